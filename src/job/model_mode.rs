//! `mode` and `model_from`, as `[segmentation]` and `[clv]` both spell them.

use super::error::{At, Invalid};
use super::value::Choice;
use crate::model_mode::{ModelFrom, ModelMode};

impl Choice for ModelMode {
    const WHAT: &'static str = "mode";
    const WORDS: &'static [(&'static str, Self)] = &[("refit", ModelMode::Refit), ("score", ModelMode::Score)];
}

/// Parses `{section}.mode` and `{section}.model_from`.
pub fn parse_model_mode(section: &str, mode: Option<&str>, from: Option<&str>) -> Result<(ModelMode, ModelFrom), Invalid> {
    let mode = ModelMode::parse_or(mode, ModelMode::Refit).at(format!("{section}.mode"))?;
    let from = match from {
        None | Some("latest") => ModelFrom::Latest,
        Some(d) => ModelFrom::Date(
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| format!("'{d}' is neither latest nor a YYYY-MM-DD date"))
                .at(format!("{section}.model_from"))?,
        ),
    };
    if from != ModelFrom::Latest && mode == ModelMode::Refit {
        return Err(Invalid::new(format!("{section}.model_from"), "only applies to mode = \"score\""));
    }
    Ok((mode, from))
}
