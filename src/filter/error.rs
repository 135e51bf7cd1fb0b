//! Why a filter was refused, and where.
//!
//! A filter comes from an HTTP parameter, so the error is meant for the person who
//! wrote it: a character offset they can count to, and a reason that says what to
//! change. Offsets are in characters, not bytes, because string values may hold
//! non-ASCII text and people count what they see.

use thiserror::Error;

/// Most characters of user text echoed back in an error message; a 4096-character
/// unknown word would otherwise drown the reason.
const SNIPPET_CHARS: usize = 24;

/// A filter that cannot be parsed: where the problem is and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at character {position}: {reason}")]
pub struct FilterError {
    /// Character offset (0-based) of the problem in the filter text.
    pub position: usize,
    /// What is wrong and what to write instead.
    pub reason: String,
}

impl FilterError {
    /// An error at character `position` with a human-readable `reason`.
    pub fn new(position: usize, reason: impl Into<String>) -> Self {
        FilterError {
            position,
            reason: reason.into(),
        }
    }
}

/// `text` in single quotes, shortened to a readable length.
pub(crate) fn quote(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(SNIPPET_CHARS).collect();
    if chars.next().is_some() {
        format!("'{head}...'")
    } else {
        format!("'{head}'")
    }
}

/// The error for a filter of `len` characters over the caller's `max_len`.
pub(crate) fn too_long(len: usize, max_len: usize) -> FilterError {
    FilterError::new(
        max_len,
        format!("the filter is {len} characters long, over the limit of {max_len}; shorten it"),
    )
}

/// The error for an empty or whitespace-only filter.
pub(crate) fn empty() -> FilterError {
    FilterError::new(
        0,
        "the filter is empty; write a condition such as int_attr>=100, or leave the parameter out",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_position_then_the_reason() {
        let e = FilterError::new(12, "expected a value after '>='");
        assert_eq!(
            e.to_string(),
            "at character 12: expected a value after '>='"
        );
    }

    #[test]
    fn quote_keeps_short_text_whole() {
        assert_eq!(quote("int_atr"), "'int_atr'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn quote_shortens_long_text_on_char_boundaries() {
        let long = "é".repeat(100);
        let q = quote(&long);
        assert!(q.ends_with("...'"));
        assert_eq!(q.chars().filter(|&c| c == 'é').count(), SNIPPET_CHARS);
    }

    #[test]
    fn length_errors_point_at_the_first_character_over_the_limit() {
        let e = too_long(300, 256);
        assert_eq!(e.position, 256);
        assert!(e.reason.contains("300") && e.reason.contains("256"));
    }

    #[test]
    fn empty_error_points_at_the_start() {
        assert_eq!(empty().position, 0);
    }
}
