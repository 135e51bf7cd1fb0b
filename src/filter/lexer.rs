//! Tokens: filter text cut into words, numbers, strings, operators and punctuation.
//!
//! Each token carries the character offset where it starts, so the parser can point
//! at the exact spot of a mistake. Keywords (`AND`, `OR`, `in`, `not`) are recognised
//! here, case-insensitively, so attribute names can never be confused with them.
//! String escapes are resolved here too: the parser only ever sees the value.

use std::fmt;

use super::ast::CmpOp;
use super::error::{quote, FilterError};

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// An identifier that is not a keyword (an attribute name, or a typo).
    Word(String),
    /// An optional `-` and decimal digits, not yet range-checked.
    Number(String),
    /// A double-quoted string, escapes resolved.
    Str(String),
    Op(CmpOp),
    And,
    Or,
    In,
    Not,
    LParen,
    RParen,
    Comma,
}

/// A token and the character offset of its first character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub pos: usize,
}

/// How a token is named in error messages ("found ...").
impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::Word(w) => f.write_str(&quote(w)),
            TokenKind::Number(n) => f.write_str(&quote(n)),
            TokenKind::Str(s) => write!(f, "the string {}", quote(s)),
            TokenKind::Op(op) => write!(f, "'{}'", op.symbol()),
            TokenKind::And => f.write_str("'AND'"),
            TokenKind::Or => f.write_str("'OR'"),
            TokenKind::In => f.write_str("'in'"),
            TokenKind::Not => f.write_str("'not'"),
            TokenKind::LParen => f.write_str("'('"),
            TokenKind::RParen => f.write_str("')'"),
            TokenKind::Comma => f.write_str("','"),
        }
    }
}

/// True for characters that may continue an identifier or a number.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Cuts `text` into tokens; fails on the first character that cannot start one.
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
    // Indexing a char vector keeps positions in characters; callers bound its length.
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let next = chars.get(i + 1).copied();
        let (kind, len) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => (TokenKind::LParen, 1),
            ')' => (TokenKind::RParen, 1),
            ',' => (TokenKind::Comma, 1),
            '>' if next == Some('=') => (TokenKind::Op(CmpOp::Ge), 2),
            '>' => (TokenKind::Op(CmpOp::Gt), 1),
            '<' if next == Some('=') => (TokenKind::Op(CmpOp::Le), 2),
            '<' if next == Some('>') => {
                return Err(FilterError::new(
                    i,
                    "'<>' is not an operator; write != for not equal",
                ))
            }
            '<' => (TokenKind::Op(CmpOp::Lt), 1),
            '=' if next == Some('=') => {
                return Err(FilterError::new(
                    i,
                    "'==' is not an operator; write a single =",
                ))
            }
            '=' => (TokenKind::Op(CmpOp::Eq), 1),
            '!' if next == Some('=') => (TokenKind::Op(CmpOp::Ne), 2),
            '!' => {
                return Err(FilterError::new(
                    i,
                    "'!' must be followed by '='; write != for not equal",
                ))
            }
            '"' => lex_string(&chars, i)?,
            '\'' => {
                return Err(FilterError::new(
                    i,
                    "strings take double quotes; write \"value\" instead of 'value'",
                ))
            }
            '-' | '0'..='9' => lex_number(&chars, i)?,
            c if c.is_ascii_alphabetic() || c == '_' => lex_word(&chars, i),
            other => {
                return Err(FilterError::new(
                    i,
                    format!(
                        "unexpected character '{other}'; join conditions with AND or OR, and put text values in double quotes"
                    ),
                ))
            }
        };
        tokens.push(Token { kind, pos: i });
        i += len;
    }
    Ok(tokens)
}

/// The identifier or keyword starting at `start`, and its length in characters.
fn lex_word(chars: &[char], start: usize) -> (TokenKind, usize) {
    let word: String = chars
        .iter()
        .skip(start)
        .take_while(|&&c| is_word_char(c))
        .collect();
    let len = word.chars().count();
    let kind = if word.eq_ignore_ascii_case("and") {
        TokenKind::And
    } else if word.eq_ignore_ascii_case("or") {
        TokenKind::Or
    } else if word.eq_ignore_ascii_case("in") {
        TokenKind::In
    } else if word.eq_ignore_ascii_case("not") {
        TokenKind::Not
    } else {
        TokenKind::Word(word)
    };
    (kind, len)
}

/// The number starting at `start` (optional `-`, then digits), and its length.
fn lex_number(chars: &[char], start: usize) -> Result<(TokenKind, usize), FilterError> {
    let negative = chars.get(start) == Some(&'-');
    let digits_from = start + usize::from(negative);
    let digits = chars
        .iter()
        .skip(digits_from)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 {
        return Err(FilterError::new(
            start,
            "'-' must be followed by the digits of a number, like -5",
        ));
    }
    let end = digits_from + digits;
    // `12abc` is a typo, not the number 12 followed by a word: say so here.
    if chars.get(end).is_some_and(|&c| is_word_char(c)) {
        let word: String = chars
            .iter()
            .skip(start)
            .take_while(|&&c| is_word_char(c) || c == '-')
            .collect();
        return Err(FilterError::new(
            start,
            format!(
                "{} is not a number; numbers are digits with an optional leading '-', and need a space before a keyword",
                quote(&word)
            ),
        ));
    }
    let text: String = chars.iter().skip(start).take(end - start).collect();
    Ok((TokenKind::Number(text), end - start))
}

/// The double-quoted string starting at `start` (on the opening quote), and its length.
fn lex_string(chars: &[char], start: usize) -> Result<(TokenKind, usize), FilterError> {
    let unclosed = || {
        FilterError::new(
            start,
            "the string starting here is never closed; add a closing '\"'",
        )
    };
    let mut value = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(unclosed()),
            Some('"') => return Ok((TokenKind::Str(value), i + 1 - start)),
            Some('\\') => match chars.get(i + 1) {
                Some(&c @ ('"' | '\\')) => {
                    value.push(c);
                    i += 2;
                }
                None => return Err(unclosed()),
                Some(other) => {
                    return Err(FilterError::new(
                        i,
                        format!(
                            "unknown escape '\\{other}'; inside a string only \\\" and \\\\ may follow a backslash"
                        ),
                    ))
                }
            },
            Some(&c) => {
                value.push(c);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        tokenize(text)
            .expect("lexes")
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    fn error_at(text: &str) -> usize {
        tokenize(text).expect_err("refused").position
    }

    #[test]
    fn operators_need_no_surrounding_space() {
        use TokenKind as K;
        assert_eq!(
            kinds("int_attr>=-100"),
            [
                K::Word("int_attr".into()),
                K::Op(CmpOp::Ge),
                K::Number("-100".into())
            ]
        );
        assert_eq!(
            kinds("a!=\"x\""),
            [K::Word("a".into()), K::Op(CmpOp::Ne), K::Str("x".into())]
        );
        assert_eq!(
            kinds("<<=>"),
            [K::Op(CmpOp::Lt), K::Op(CmpOp::Le), K::Op(CmpOp::Gt)]
        );
    }

    #[test]
    fn keywords_are_case_insensitive() {
        use TokenKind as K;
        assert_eq!(kinds("and Or NOT iN"), [K::And, K::Or, K::Not, K::In]);
        assert_eq!(kinds("andx"), [K::Word("andx".into())]);
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let tokens = tokenize("str_attr=\"é\" OR x").expect("lexes");
        let or = tokens
            .iter()
            .find(|t| t.kind == TokenKind::Or)
            .expect("has OR");
        assert_eq!(or.pos, 13);
        assert_eq!(error_at("\"éé\" #"), 5);
    }

    #[test]
    fn strings_resolve_their_two_escapes() {
        assert_eq!(kinds(r#""a\"b\\c""#), [TokenKind::Str("a\"b\\c".into())]);
        assert_eq!(kinds(r#""""#), [TokenKind::Str(String::new())]);
    }

    #[test]
    fn bad_strings_point_at_the_problem() {
        assert_eq!(error_at(r#"x="ab\nc""#), 5);
        assert_eq!(error_at(r#"x = "abc"#), 4);
        assert_eq!(error_at(r#"x = "abc\"#), 4);
        assert_eq!(error_at("x = 'abc'"), 4);
    }

    #[test]
    fn malformed_numbers_and_stray_characters_are_refused() {
        assert_eq!(error_at("x=12abc"), 2);
        assert_eq!(error_at("x=1AND y=2"), 2);
        assert_eq!(error_at("x = - 5"), 4);
        assert_eq!(error_at("x == 5"), 2);
        assert_eq!(error_at("x <> 5"), 2);
        assert_eq!(error_at("x ! 5"), 2);
        assert_eq!(error_at("x ; 5"), 2);
    }
}
