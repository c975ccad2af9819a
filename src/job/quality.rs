//! `[quality.<source>]`: checks that each rule set names a source and lists columns.

use std::collections::BTreeMap;

use super::error::Invalid;
use super::sources::Source;
use crate::quality::SourceRules;

pub(super) fn check_quality(quality: &BTreeMap<String, SourceRules>, sources: &[Source]) -> Result<(), Invalid> {
    for (name, rules) in quality {
        let key = format!("quality.{name}");
        if !sources.iter().any(|s| &s.name == name) {
            return Err(Invalid::new(key, format!("'{name}' is not a source")));
        }
        let lists = [rules.null_ids.as_ref().map(|r| &r.columns), rules.bad_amounts.as_ref().map(|r| &r.columns)];
        if lists.into_iter().flatten().any(|c| c.is_empty()) {
            return Err(Invalid::new(key, "a rule's columns list is empty"));
        }
    }
    Ok(())
}
