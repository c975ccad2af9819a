//! The report's error: which chart could not be drawn, and why.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReportError {
    /// A chart could not be drawn: its input breaks a rule, or plotters failed.
    #[error("report chart '{chart}': {message}")]
    Chart { chart: &'static str, message: String },
}
