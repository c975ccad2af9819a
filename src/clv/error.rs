//! The CLV stage's error type: bad input, and fits that fail, degenerate or do not converge.

#[derive(Debug, thiserror::Error)]
pub enum ClvError {
    #[error("invalid CLV input: {0}")]
    Input(String),
    #[error("{model} fit failed: {message}")]
    Fit { model: &'static str, message: String },
    #[error("{model} fit is degenerate: {parameter} = {value:e}; the data cannot identify the model (e.g. too few repeat purchases)")]
    Degenerate {
        model: &'static str,
        parameter: &'static str,
        value: f64,
    },
    #[error("{model} fit did not converge after {iterations} iterations ({reason})")]
    NotConverged {
        model: &'static str,
        iterations: u64,
        reason: String,
    },
}
