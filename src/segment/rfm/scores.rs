//! RFM quintile scores and the named segments on the R × F grid: [`quintile_scores`], the
//! segment rules ([`RfmRule`], [`default_rules`], [`check_rules`], [`parse_range`]) and the
//! lookups [`rfm_segment`] and [`rfm_cell`].
//!
//! Tie rule: [`quintile_scores`] ranks like SQL `RANK()` — equal values share the lowest rank of their
//! group — and maps rank `r` of `n` to `1 + floor(5 (r - 1) / n)`. Equal values therefore always get
//! equal scores; a value shared by many rows (e.g. frequency 1) gets the score of where its group starts,
//! so quintiles can be uneven or empty when the data are heavily tied.

/// Scores 1..=5 by rank. `higher_is_better`: for frequency and monetary (true) the largest values score 5; for
/// recency_days (false) the smallest (most recent) score 5.
///
/// Rule: sort the values so that "worse" comes first (ascending when `higher_is_better`, descending
/// otherwise; stable, by [`f64::total_cmp`]). Each row's rank `r` is the 1-based position of the FIRST row
/// with an equal value (ties share the lowest rank, like SQL `RANK()`), and its score is
/// `1 + floor(5 · (r − 1) / n)`. Equal values always get equal scores, and a value shared by many rows
/// gets the score of where its group starts — so if every value is equal, every row scores 1.
///
/// The caller guarantees finite values (a NaN does not panic but gets an unspecified score).
/// Scores are returned in input order; `n = 0` gives an empty vector.
pub fn quintile_scores(values: &[f64], higher_is_better: bool) -> Vec<u8> {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    if higher_is_better {
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    } else {
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    }
    let mut scores = vec![0u8; n];
    let mut group_start = 0usize; // 0-based position of the first row of the current tie group
    for (pos, &row) in order.iter().enumerate() {
        // `==` rather than total_cmp so that -0.0 and 0.0 tie; they are adjacent after the sort.
        if pos > 0 && values[row] != values[order[pos - 1]] {
            group_start = pos;
        }
        // group_start = r - 1 < n, so the quotient is 0..=4.
        scores[row] = 1 + (5 * group_start / n) as u8;
    }
    scores
}

// ---------------------------------------------------------------------------------------------------------------
// RFM cell and named segments
// ---------------------------------------------------------------------------------------------------------------

/// A named RFM segment: the cells whose R, F and M scores all fall in the inclusive ranges (within 1..=5).
#[derive(Debug, Clone, PartialEq)]
pub struct RfmRule {
    pub name: String,
    pub r: (u8, u8),
    pub f: (u8, u8),
    pub m: (u8, u8),
}

impl RfmRule {
    fn matches(&self, r: u8, f: u8, m: u8) -> bool {
        let within = |(lo, hi): (u8, u8), v: u8| lo <= v && v <= hi;
        within(self.r, r) && within(self.f, f) && within(self.m, m)
    }
}

/// The widely used RFM segment map on the R × F grid (M any), with Hibernating split from Lost by R.
/// The rules are disjoint and cover all 125 cells, so their order does not matter.
///
/// | R \ F | 1 | 2 | 3 | 4 | 5 |
/// |---|---|---|---|---|---|
/// | 5 | New | Potential loyalist | Potential loyalist | Champions | Champions |
/// | 4 | Promising | Potential loyalist | Potential loyalist | Loyal | Loyal |
/// | 3 | About to sleep | About to sleep | Need attention | Loyal | Loyal |
/// | 2 | Hibernating | Hibernating | At risk | At risk | Can't lose them |
/// | 1 | Lost | Lost | At risk | At risk | Can't lose them |
pub fn default_rules() -> Vec<RfmRule> {
    let rule = |name: &str, r: (u8, u8), f: (u8, u8)| RfmRule {
        name: name.to_string(),
        r,
        f,
        m: (1, 5),
    };
    vec![
        rule("Champions", (5, 5), (4, 5)),
        rule("Loyal", (3, 4), (4, 5)),
        rule("Potential loyalist", (4, 5), (2, 3)),
        rule("New", (5, 5), (1, 1)),
        rule("Promising", (4, 4), (1, 1)),
        rule("Need attention", (3, 3), (3, 3)),
        rule("About to sleep", (3, 3), (1, 2)),
        rule("At risk", (1, 2), (3, 4)),
        rule("Can't lose them", (1, 2), (5, 5)),
        rule("Hibernating", (2, 2), (1, 2)),
        rule("Lost", (1, 1), (1, 2)),
    ]
}

/// Checks ranges are within 1..=5 and lo <= hi, names non-empty, and that every one of the 125 (r,f,m) cells matches
/// some rule; the first uncovered cell is named in the error, e.g. "cell 3-1-2 (r=3, f=1, m=2) matches no segment".
///
/// Overlaps are allowed (the first matching rule wins, see [`rfm_segment`]), and so are repeated names, so that
/// a segment that is not a box can be written as several rules.
pub fn check_rules(rules: &[RfmRule]) -> Result<(), String> {
    for (i, rule) in rules.iter().enumerate() {
        if rule.name.trim().is_empty() {
            return Err(format!("RFM segment rule {} has an empty name", i + 1));
        }
        for (axis, (lo, hi)) in [("r", rule.r), ("f", rule.f), ("m", rule.m)] {
            if !(1..=5).contains(&lo) || !(1..=5).contains(&hi) || lo > hi {
                return Err(format!(
                    "RFM segment \"{}\": {axis} range {lo}-{hi} must lie within 1-5 with low <= high",
                    rule.name
                ));
            }
        }
    }
    for r in 1..=5 {
        for f in 1..=5 {
            for m in 1..=5 {
                if rfm_segment(rules, r, f, m).is_none() {
                    return Err(format!("cell {r}-{f}-{m} (r={r}, f={f}, m={m}) matches no segment"));
                }
            }
        }
    }
    Ok(())
}

/// First matching rule wins.
pub fn rfm_segment(rules: &[RfmRule], r: u8, f: u8, m: u8) -> Option<&str> {
    rules
        .iter()
        .find(|rule| rule.matches(r, f, m))
        .map(|rule| rule.name.as_str())
}

/// The RFM cell label, e.g. `rfm_cell(5, 4, 3) == "543"`.
pub fn rfm_cell(r: u8, f: u8, m: u8) -> String {
    format!("{r}{f}{m}")
}

/// Parses "4-5" or "3" into an inclusive range (for the job file), errors name the text.
///
/// Both ends must be scores 1..=5 with low <= high; spaces around the numbers are allowed.
pub fn parse_range(s: &str) -> Result<(u8, u8), String> {
    let bad = |why: &str| format!("invalid RFM score range \"{s}\": {why}");
    let score = |part: &str| -> Result<u8, String> {
        let part = part.trim();
        // Digits only: u8::from_str would also accept "+3".
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("expected a score 1-5 or a range like 4-5"));
        }
        match part.parse::<u8>() {
            Ok(v) if (1..=5).contains(&v) => Ok(v),
            _ => Err(bad("scores must be between 1 and 5")),
        }
    };
    let (lo, hi) = match s.split_once('-') {
        Some((lo, hi)) => (score(lo)?, score(hi)?),
        None => {
            let v = score(s)?;
            (v, v)
        }
    };
    if lo > hi {
        return Err(bad("the low end is above the high end"));
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_values_fill_the_quintiles_evenly() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quintile_scores(&v, true), vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    }

    #[test]
    fn most_recent_scores_five() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quintile_scores(&v, false), vec![5, 5, 4, 4, 3, 3, 2, 2, 1, 1]);
    }

    #[test]
    fn scores_come_back_in_input_order() {
        // Ranks (ascending) 3, 1, 2 of n = 3: 1 + floor(5·2/3) = 4, 1 + 0 = 1, 1 + floor(5/3) = 2.
        assert_eq!(quintile_scores(&[30.0, 10.0, 20.0], true), vec![4, 1, 2]);
        // Descending: 30 is rank 1, 20 rank 2, 10 rank 3.
        assert_eq!(quintile_scores(&[30.0, 10.0, 20.0], false), vec![1, 4, 2]);
    }

    #[test]
    fn ties_share_the_lowest_rank() {
        // Six 1s share rank 1 -> 1; 2 is rank 7 -> 1 + floor(30/10) = 4; 3 rank 8 -> 1 + floor(35/10) = 4;
        // 4 rank 9 -> 5; 5 rank 10 -> 5. Quintiles 2 and 3 are empty.
        let v = [1.0, 5.0, 1.0, 1.0, 2.0, 1.0, 4.0, 1.0, 3.0, 1.0];
        assert_eq!(quintile_scores(&v, true), vec![1, 5, 1, 1, 4, 1, 5, 1, 4, 1]);
    }

    #[test]
    fn ties_share_the_lowest_rank_when_lower_is_better() {
        // Descending: 9 rank 1 -> 1; the three 4s start at rank 2 -> 1 + floor(5/5) = 2; 0 rank 5 -> 5.
        assert_eq!(quintile_scores(&[4.0, 9.0, 4.0, 0.0, 4.0], false), vec![2, 1, 2, 5, 2]);
    }

    #[test]
    fn all_equal_values_score_one() {
        assert_eq!(quintile_scores(&[7.0; 6], true), vec![1; 6]);
        assert_eq!(quintile_scores(&[7.0; 6], false), vec![1; 6]);
    }

    #[test]
    fn negative_and_positive_zero_tie() {
        assert_eq!(quintile_scores(&[0.0, -0.0, 1.0], true), vec![1, 1, 4]);
    }

    #[test]
    fn no_values_no_scores() {
        assert!(quintile_scores(&[], true).is_empty());
        assert_eq!(quintile_scores(&[3.5], false), vec![1]);
    }

    // --- RFM rules ---

    #[test]
    fn default_rules_cover_every_cell() {
        assert_eq!(check_rules(&default_rules()), Ok(()));
    }

    #[test]
    fn default_rules_are_disjoint() {
        let rules = default_rules();
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    let hits = rules.iter().filter(|rule| rule.matches(r, f, m)).count();
                    assert_eq!(hits, 1, "cell {}", rfm_cell(r, f, m));
                }
            }
        }
    }

    #[test]
    fn default_rules_have_the_eleven_names() {
        let names: Vec<String> = default_rules().into_iter().map(|r| r.name).collect();
        let expected = [
            "Champions",
            "Loyal",
            "Potential loyalist",
            "New",
            "Promising",
            "Need attention",
            "About to sleep",
            "At risk",
            "Can't lose them",
            "Hibernating",
            "Lost",
        ];
        assert_eq!(names, expected);
    }

    #[test]
    fn default_rules_follow_the_segment_map() {
        let rules = default_rules();
        // One row per R (5 down to 1), one column per F (1 to 5); M must not matter.
        let map = [
            [
                "New",
                "Potential loyalist",
                "Potential loyalist",
                "Champions",
                "Champions",
            ],
            [
                "Promising",
                "Potential loyalist",
                "Potential loyalist",
                "Loyal",
                "Loyal",
            ],
            ["About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"],
            ["Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"],
            ["Lost", "Lost", "At risk", "At risk", "Can't lose them"],
        ];
        for (row, names) in map.iter().enumerate() {
            let r = 5 - row as u8;
            for (col, name) in names.iter().enumerate() {
                let f = col as u8 + 1;
                for m in 1..=5 {
                    assert_eq!(rfm_segment(&rules, r, f, m), Some(*name), "cell {}", rfm_cell(r, f, m));
                }
            }
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let rule = |name: &str| RfmRule {
            name: name.into(),
            r: (1, 5),
            f: (1, 5),
            m: (1, 5),
        };
        let rules = [
            RfmRule {
                r: (5, 5),
                ..rule("Top")
            },
            rule("Everyone"),
        ];
        assert_eq!(rfm_segment(&rules, 5, 1, 1), Some("Top"));
        assert_eq!(rfm_segment(&rules, 4, 1, 1), Some("Everyone"));
        assert_eq!(check_rules(&rules), Ok(()));
    }

    #[test]
    fn uncovered_cell_is_named() {
        // Drop "About to sleep" (R 3, F 1-2): the first gap in r, f, m order is 3-1-1.
        let rules: Vec<RfmRule> = default_rules()
            .into_iter()
            .filter(|r| r.name != "About to sleep")
            .collect();
        assert_eq!(
            check_rules(&rules),
            Err("cell 3-1-1 (r=3, f=1, m=1) matches no segment".to_string())
        );
        assert_eq!(rfm_segment(&rules, 3, 2, 4), None);
    }

    #[test]
    fn uncovered_m_cell_is_named() {
        let mut rules = default_rules();
        for rule in &mut rules {
            if rule.name == "Lost" {
                rule.m = (3, 5);
            }
        }
        assert_eq!(
            check_rules(&rules),
            Err("cell 1-1-1 (r=1, f=1, m=1) matches no segment".to_string())
        );
    }

    #[test]
    fn out_of_range_or_reversed_ranges_are_rejected() {
        let mut rules = default_rules();
        rules[0].f = (0, 5);
        let err = check_rules(&rules).unwrap_err();
        assert!(err.contains("\"Champions\"") && err.contains("f range 0-5"), "{err}");

        let mut rules = default_rules();
        rules[1].m = (4, 2);
        let err = check_rules(&rules).unwrap_err();
        assert!(err.contains("\"Loyal\"") && err.contains("m range 4-2"), "{err}");

        let mut rules = default_rules();
        rules[2].r = (4, 6);
        assert!(check_rules(&rules).unwrap_err().contains("r range 4-6"));
    }

    #[test]
    fn blank_names_are_rejected() {
        let mut rules = default_rules();
        rules[3].name = "  ".into();
        assert_eq!(
            check_rules(&rules),
            Err("RFM segment rule 4 has an empty name".to_string())
        );
    }

    #[test]
    fn no_rules_cover_nothing() {
        assert_eq!(
            check_rules(&[]),
            Err("cell 1-1-1 (r=1, f=1, m=1) matches no segment".to_string())
        );
    }

    #[test]
    fn cell_is_three_digits() {
        assert_eq!(rfm_cell(5, 4, 3), "543");
        assert_eq!(rfm_cell(1, 1, 1), "111");
    }

    #[test]
    fn ranges_parse_from_text() {
        assert_eq!(parse_range("4-5"), Ok((4, 5)));
        assert_eq!(parse_range("3"), Ok((3, 3)));
        assert_eq!(parse_range(" 1 - 2 "), Ok((1, 2)));
        assert_eq!(parse_range("2-2"), Ok((2, 2)));
    }

    #[test]
    fn bad_ranges_name_the_text() {
        assert_eq!(
            parse_range("5-4"),
            Err("invalid RFM score range \"5-4\": the low end is above the high end".into())
        );
        assert_eq!(
            parse_range("1-6"),
            Err("invalid RFM score range \"1-6\": scores must be between 1 and 5".into())
        );
        assert_eq!(
            parse_range("4-"),
            Err("invalid RFM score range \"4-\": expected a score 1-5 or a range like 4-5".into())
        );
        for text in ["", "x", "0", "6", "-3", "+3", "1-2-3", "256", "2.5"] {
            let err = parse_range(text).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid RFM score range \"{text}\": ")),
                "{text:?}: {err}"
            );
        }
    }
}
