//! Validated values shared by the sections: [`Name`] (an identifier checked with
//! [`check_name`]) and [`Choice`] (a word naming one of an enum's values).
//!
//! The raw structs keep these as strings so that a bad value is reported as
//! `{path}: {key}: {message}` (a validation error naming the key), not as a TOML parse error.

use super::error::Problem;
use crate::names::check_name;

/// A name that becomes a SQL identifier or a path segment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    pub fn new(name: String) -> Result<Name, Problem> {
        check_name(&name)?;
        Ok(Name(name))
    }

    /// Checks a name the caller keeps as a string.
    pub fn check(name: &str) -> Result<(), Problem> {
        Ok(check_name(name)?)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// An enum spelled in the job file as one of a fixed list of words.
pub trait Choice: Copy + 'static {
    /// What the word names, for "unknown {WHAT} 'x'".
    const WHAT: &'static str;
    /// Every word and its value, in the order the error message lists them.
    const WORDS: &'static [(&'static str, Self)];

    /// The value `word` names, or the error listing the choices.
    fn parse(word: &str) -> Result<Self, Problem> {
        Self::WORDS.iter().find(|(w, _)| *w == word).map(|(_, v)| *v).ok_or_else(|| Problem::Unknown {
            what: Self::WHAT,
            value: word.to_string(),
            expected: expected(Self::WORDS.iter().map(|(w, _)| *w)),
        })
    }

    /// [`Choice::parse`] with a default when the key is absent.
    fn parse_or(word: Option<&str>, default: Self) -> Result<Self, Problem> {
        word.map_or(Ok(default), Self::parse)
    }
}

/// "a, b or c".
fn expected<'a>(words: impl Iterator<Item = &'a str>) -> String {
    let words: Vec<&str> = words.collect();
    match words.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_are_listed_with_commas_and_or() {
        assert_eq!(expected(["a"].into_iter()), "a");
        assert_eq!(expected(["a", "b"].into_iter()), "a or b");
        assert_eq!(expected(["a", "b", "c"].into_iter()), "a, b or c");
    }
}
