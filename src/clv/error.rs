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

/// The one-line reason a customer's predictions are out of range, naming the customer's summary
/// and the parameters.
pub fn out_of_range(customer: &[(&str, f64)], params: &[(&str, f64)]) -> String {
    let customer: Vec<String> = customer.iter().map(|(name, v)| format!("{name} {v}")).collect();
    format!("the predictions for a customer with {} are out of range ({})", customer.join(", "), describe_params(params))
}

/// "r = 0.2430, alpha = 4.4136, …", for messages and logs.
pub fn describe_params(params: &[(&str, f64)]) -> String {
    params.iter().map(|(name, v)| format!("{name} = {v:.4}")).collect::<Vec<_>>().join(", ")
}
