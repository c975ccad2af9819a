//! `[privacy]`: checks the settings [`PrivacySpec`] deserializes.

use super::error::Invalid;
use crate::privacy::PrivacySpec;

pub(super) fn check_privacy(privacy: &PrivacySpec) -> Result<(), Invalid> {
    if let Some(var) = &privacy.key_env
        && var.trim().is_empty()
    {
        return Err(Invalid::new("privacy.key_env", "must name an environment variable"));
    }
    Ok(())
}
