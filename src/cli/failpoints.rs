//! `SEGVALUE_FAILPOINTS`: fail points for the crash tests, e.g.
//! `SEGVALUE_FAILPOINTS='publish-step=12*off->return'` ends the process at the 13th step of
//! publishing, or `publish-step=sleep(20)` slows every step (fail-rs's action syntax, one
//! `name=actions` per `;`). Not for production use; unset, nothing happens.

/// Configures the fail points the variable names; a malformed entry is an error, not fail-rs's
/// panic.
pub fn configure() -> Result<(), String> {
    let Ok(spec) = std::env::var("SEGVALUE_FAILPOINTS") else { return Ok(()) };
    for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, actions) = entry
            .split_once('=')
            .ok_or_else(|| format!("SEGVALUE_FAILPOINTS: expected NAME=ACTIONS, got '{entry}'"))?;
        fail::cfg(name.trim(), actions.trim()).map_err(|e| format!("SEGVALUE_FAILPOINTS: '{entry}': {e}"))?;
    }
    Ok(())
}
