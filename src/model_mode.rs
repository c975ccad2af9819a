//! Whether a stage fits a new model or scores with a saved one: shared by `[segmentation]`
//! and `[clv]` (a leaf module, so neither stage imports the other). `job` parses them.

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
