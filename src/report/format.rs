//! Number formatting shared by the page's tables and the charts' labels.

/// 1234567 → "1,234,567".
pub(super) fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A value for tables and labels: 4 significant digits, thousands as k/M/B, "–" if not finite.
pub(super) fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let a = v.abs();
    let (scaled, suffix) = match a {
        a if a >= 1e9 => (v / 1e9, "B"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e4 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let sa = scaled.abs();
    let decimals = if sa >= 1000.0 {
        0
    } else if sa >= 100.0 {
        1
    } else if sa >= 10.0 {
        2
    } else {
        3
    };
    format!("{}{suffix}", trim_zeros(&format!("{scaled:.decimals$}")))
}

/// "1.500" → "1.5", "2.000" → "2", "-0" → "0".
pub(super) fn trim_zeros(s: &str) -> String {
    let t = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s };
    if t == "-0" { "0".to_string() } else { t.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_compactly() {
        assert_eq!(fmt_count(1_234_567), "1,234,567");
        assert_eq!(fmt_count(0), "0");
        assert_eq!(
            [fmt_value(0.25), fmt_value(12_345.0), fmt_value(-2.5e6), fmt_value(f64::NAN)],
            ["0.25", "12.35k", "-2.5M", "–"]
        );
    }
}
