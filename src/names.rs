//! Names that become SQL identifiers and path segments (a leaf module).

/// Names become SQL identifiers and path segments: keep them plain lower-case.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!("'{name}' is not a valid name (use lower-case letters, digits and '_')"))
    }
}
