//! Whether a stage fits a new model or scores with a saved one: shared by `[segmentation]`
//! and `[clv]` (a leaf module, so neither stage imports the other).

/// `mode`: fit a new model every run, or assign with a saved one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelMode {
    #[default]
    Refit,
    Score,
}

/// `model_from`: which saved model a score run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelFrom {
    /// The newest saved model dated before the run date.
    #[default]
    Latest,
    Date(chrono::NaiveDate),
}

/// Parses `mode` and `model_from` (shared by `[segmentation]` and `[clv]`).
pub fn parse_model_mode(mode: Option<&str>, from: Option<&str>) -> Result<(ModelMode, ModelFrom), (String, String)> {
    let mode = match mode.unwrap_or("refit") {
        "refit" => ModelMode::Refit,
        "score" => ModelMode::Score,
        other => return Err(("mode".into(), format!("unknown mode '{other}' (expected refit or score)"))),
    };
    let from = match from {
        None | Some("latest") => ModelFrom::Latest,
        Some(d) => ModelFrom::Date(
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| ("model_from".to_string(), format!("'{d}' is neither latest nor a YYYY-MM-DD date")))?,
        ),
    };
    if from != ModelFrom::Latest && mode == ModelMode::Refit {
        return Err(("model_from".into(), "only applies to mode = \"score\"".into()));
    }
    Ok((mode, from))
}
