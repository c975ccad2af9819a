//! Text helpers shared by every stage's errors and logs (a leaf: imports nothing from the crate).

/// DataFusion errors often span lines (schema listings, backtraces); logs and exit messages
/// must stay one line per error.
pub fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}
