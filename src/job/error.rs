//! Job-file errors: [`JobError`] (what the user sees, with the file and key or line) and the
//! section validators' [`Invalid`] (a key and a typed [`Problem`]).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{path}: cannot read job file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// What is wrong with one value, in the words the user reads after `{key}: `.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("must be at least 1")]
    AtLeastOne,
    #[error("must be a finite number > 0, got {0}")]
    NotPositive(f64),
    #[error("must be a finite number >= 0, got {0}")]
    Negative(f64),
    /// A word that is not one of the choices, e.g. "unknown time unit 'x' (expected weeks or days)".
    #[error("unknown {what} '{value}' (expected {expected})")]
    Unknown {
        what: &'static str,
        value: String,
        expected: String,
    },
    /// Any other rule, worded where it is checked (or by the domain module that owns it).
    #[error("{0}")]
    Rule(String),
}

impl From<String> for Problem {
    fn from(message: String) -> Self {
        Problem::Rule(message)
    }
}

impl From<&str> for Problem {
    fn from(message: &str) -> Self {
        Problem::Rule(message.to_string())
    }
}

/// A section validator's error: the full key (`segmentation.k`, `rfm.segments[0].r`) and
/// what is wrong with its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub key: String,
    pub problem: Problem,
}

impl Invalid {
    pub fn new(key: impl Into<String>, problem: impl Into<Problem>) -> Invalid {
        Invalid {
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// The error the user sees for this job file.
    pub fn in_file(self, path: &Path) -> JobError {
        JobError::Invalid {
            path: path.to_path_buf(),
            key: self.key,
            message: self.problem.to_string(),
        }
    }
}

/// Names the key a bad value came from: `check(x).at("clv.margin")?`.
pub trait At<T> {
    fn at(self, key: impl Into<String>) -> Result<T, Invalid>;
}

impl<T, P: Into<Problem>> At<T> for Result<T, P> {
    fn at(self, key: impl Into<String>) -> Result<T, Invalid> {
        self.map_err(|p| Invalid::new(key, p))
    }
}
