//! Recursive descent from tokens to an [`Expr`], with one error per mistake.
//!
//! `OR` is parsed above `AND` so that `AND` binds tighter. A chain `a AND b AND c`
//! becomes one n-ary node rather than a left-leaning binary tree, so recursion
//! depth follows only the parentheses, which are capped at [`MAX_DEPTH`]: the text
//! is untrusted and must not be able to exhaust the stack.

use super::ast::{CmpOp, Expr, Field};
use super::error::{quote, FilterError};
use super::lexer::{Token, TokenKind};

/// Most parentheses that may be open at once.
pub const MAX_DEPTH: usize = 32;

/// Parses a whole token list; `end` is the character length of the text.
pub(crate) fn parse_tokens(tokens: &[Token], end: usize) -> Result<Expr, FilterError> {
    let mut parser = Parser {
        tokens,
        next: 0,
        end,
        depth: 0,
    };
    let expr = parser.or_expr()?;
    match parser.peek() {
        None => Ok(expr),
        Some(t) if t.kind == TokenKind::RParen => Err(FilterError::new(
            t.pos,
            "this ')' has no matching '('; remove it or add a '(' before",
        )),
        Some(t) => Err(FilterError::new(
            t.pos,
            format!(
                "expected AND, OR or the end of the filter after a condition, found {}",
                t.kind
            ),
        )),
    }
}

/// Position in the token list, plus how many parentheses are open.
struct Parser<'t> {
    tokens: &'t [Token],
    next: usize,
    end: usize,
    depth: usize,
}

impl<'t> Parser<'t> {
    // Tokens borrow from the list ('t), not from the parser, so a token can be held
    // while the parser advances.
    fn peek(&self) -> Option<&'t Token> {
        self.tokens.get(self.next)
    }

    fn bump(&mut self) -> Option<&'t Token> {
        let token = self.tokens.get(self.next);
        self.next += 1;
        token
    }

    /// Whether the next token is `kind`.
    fn at(&self, kind: &TokenKind) -> bool {
        self.peek().is_some_and(|t| t.kind == *kind)
    }

    /// Consumes the next token if it is `kind`.
    fn eat(&mut self, kind: &TokenKind) -> bool {
        let found = self.at(kind);
        if found {
            self.next += 1;
        }
        found
    }

    /// Where the next token starts, or the end of the text.
    fn here(&self) -> usize {
        self.peek().map_or(self.end, |t| t.pos)
    }

    /// "found X" for the next token, or "but the filter ends".
    fn found(&self) -> String {
        match self.peek() {
            Some(t) => format!("found {}", t.kind),
            None => "but the filter ends there".to_string(),
        }
    }

    fn or_expr(&mut self) -> Result<Expr, FilterError> {
        let first = self.and_expr()?;
        if !self.at(&TokenKind::Or) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(&TokenKind::Or) {
            items.push(self.and_expr()?);
        }
        Ok(Expr::Or(items))
    }

    fn and_expr(&mut self) -> Result<Expr, FilterError> {
        let first = self.primary()?;
        if !self.at(&TokenKind::And) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(&TokenKind::And) {
            items.push(self.primary()?);
        }
        Ok(Expr::And(items))
    }

    fn primary(&mut self) -> Result<Expr, FilterError> {
        let Some(token) = self.peek() else {
            return Err(FilterError::new(
                self.end,
                "expected a condition such as int_attr>=100, but the filter ends there",
            ));
        };
        let pos = token.pos;
        match &token.kind {
            TokenKind::LParen => {
                if self.depth >= MAX_DEPTH {
                    return Err(FilterError::new(
                        pos,
                        format!(
                            "more than {MAX_DEPTH} parentheses are open here; simplify the filter"
                        ),
                    ));
                }
                self.next += 1;
                self.depth += 1;
                let inner = self.or_expr()?;
                self.depth -= 1;
                if !self.eat(&TokenKind::RParen) {
                    return Err(FilterError::new(
                        self.here(),
                        format!(
                            "expected ')' to close the '(' at character {pos}, {}",
                            self.found()
                        ),
                    ));
                }
                Ok(inner)
            }
            TokenKind::Word(name) => {
                let Some(field) = Field::from_name(name) else {
                    return Err(FilterError::new(
                        pos,
                        format!(
                            "unknown attribute {}; use int_attr, int_attr2, int_attr3, int_attr4, str_attr, str_attr2, str_attr3 or str_attr4",
                            quote(name)
                        ),
                    ));
                };
                self.next += 1;
                self.condition(field, name)
            }
            other => Err(FilterError::new(
                pos,
                format!("expected a condition such as int_attr>=100, found {other}"),
            )),
        }
    }

    /// The rest of a condition, after the attribute `name` (as written) of `field`.
    fn condition(&mut self, field: Field, name: &str) -> Result<Expr, FilterError> {
        let Some(token) = self.bump() else {
            return Err(FilterError::new(
                self.end,
                format!("expected an operator after {name}"),
            ));
        };
        let pos = token.pos;
        match (&token.kind, field) {
            (TokenKind::Op(op), Field::Int(field)) => {
                let op = *op;
                let value = self.int_value(name, op.symbol())?;
                Ok(Expr::IntCmp { field, op, value })
            }
            (TokenKind::Op(op @ (CmpOp::Eq | CmpOp::Ne)), Field::Str(field)) => {
                let negated = *op == CmpOp::Ne;
                let value = self.str_value(name, if negated { "!=" } else { "=" })?;
                Ok(Expr::StrEq { field, negated, value })
            }
            (TokenKind::Op(op), Field::Str(_)) => Err(FilterError::new(
                pos,
                format!("{name} is a string attribute: it takes =, !=, in or not in, not '{}'", op.symbol()),
            )),
            (TokenKind::In, _) => self.list(field, name, false),
            (TokenKind::Not, _) => {
                if !self.eat(&TokenKind::In) {
                    return Err(FilterError::new(
                        self.here(),
                        format!("expected 'in' after 'not', {}", self.found()),
                    ));
                }
                self.list(field, name, true)
            }
            (other, _) => Err(FilterError::new(
                pos,
                format!("expected an operator (such as =, !=, >=, in, not in) after {name}, found {other}"),
            )),
        }
    }

    /// The parenthesised value list of an `in` / `not in`, for `field` written `name`.
    fn list(&mut self, field: Field, name: &str, negated: bool) -> Result<Expr, FilterError> {
        let keyword = if negated { "not in" } else { "in" };
        let open = self.here();
        if !self.eat(&TokenKind::LParen) {
            return Err(FilterError::new(
                open,
                format!(
                    "expected '(' after '{keyword}' to start the list of values, {}",
                    self.found()
                ),
            ));
        }
        if self.at(&TokenKind::RParen) {
            return Err(FilterError::new(
                self.here(),
                format!("the list after '{keyword}' is empty; put at least one value between the parentheses"),
            ));
        }
        let mut ints = Vec::new();
        let mut strs = Vec::new();
        let mut after = "(";
        loop {
            match field {
                Field::Int(_) => ints.push(self.int_value(name, after)?),
                Field::Str(_) => strs.push(self.str_value(name, after)?),
            }
            if self.eat(&TokenKind::RParen) {
                break;
            }
            if !self.eat(&TokenKind::Comma) {
                return Err(FilterError::new(
                    self.here(),
                    format!(
                        "expected ',' or ')' in the list opened at character {open}, {}",
                        self.found()
                    ),
                ));
            }
            after = ",";
        }
        Ok(match field {
            Field::Int(field) => Expr::IntIn {
                field,
                negated,
                values: ints,
            },
            Field::Str(field) => Expr::StrIn {
                field,
                negated,
                values: strs,
            },
        })
    }

    /// A 32-bit integer value for `name`, which follows `after` in the text.
    fn int_value(&mut self, name: &str, after: &str) -> Result<i32, FilterError> {
        let pos = self.here();
        let Some(token) = self.bump() else {
            return Err(FilterError::new(
                pos,
                format!("expected a value after '{after}'"),
            ));
        };
        match &token.kind {
            TokenKind::Number(text) => text.parse::<i32>().map_err(|_| {
                FilterError::new(
                    pos,
                    format!(
                        "{} does not fit a 32-bit integer; use a value from -2147483648 to 2147483647",
                        quote(text)
                    ),
                )
            }),
            TokenKind::Str(_) => Err(FilterError::new(
                pos,
                format!("{name} is an integer attribute: write a number such as 100, without quotes"),
            )),
            other => Err(FilterError::new(
                pos,
                format!("expected a number after '{after}', found {other}"),
            )),
        }
    }

    /// A string value for `name`, which follows `after` in the text.
    fn str_value(&mut self, name: &str, after: &str) -> Result<String, FilterError> {
        let pos = self.here();
        let Some(token) = self.bump() else {
            return Err(FilterError::new(
                pos,
                format!("expected a value after '{after}'"),
            ));
        };
        match &token.kind {
            TokenKind::Str(value) => Ok(value.clone()),
            TokenKind::Number(_) | TokenKind::Word(_) => Err(FilterError::new(
                pos,
                format!(
                    "{name} is a string attribute: put the value in double quotes, like \"value\""
                ),
            )),
            other => Err(FilterError::new(
                pos,
                format!("expected a double-quoted value after '{after}', found {other}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::filter::{parse, FilterError, MAX_DEPTH};

    fn err(text: &str) -> FilterError {
        parse(text, 256).expect_err("refused")
    }

    fn canonical(text: &str) -> String {
        parse(text, 256).expect("valid filter").to_string()
    }

    #[test]
    fn type_errors_say_what_to_write() {
        let e = err("int_attr=\"5\"");
        assert_eq!(e.position, 9);
        assert!(e.reason.contains("without quotes"), "{e}");
        let e = err("str_attr=value1");
        assert_eq!(e.position, 9);
        assert!(e.reason.contains("double quotes"), "{e}");
        let e = err("str_attr<\"a\"");
        assert_eq!(e.position, 8);
        assert!(e.reason.contains("string attribute"), "{e}");
        assert!(err("int_attr in (1,\"a\")")
            .reason
            .contains("integer attribute"));
    }

    #[test]
    fn structural_errors_point_at_the_spot() {
        assert_eq!(
            err("int_attr>=").to_string(),
            "at character 10: expected a value after '>='"
        );
        assert_eq!(err("color=1").position, 0);
        assert!(err("color=1").reason.contains("unknown attribute 'color'"));
        assert_eq!(err("int_attr=1 AND").position, 14);
        assert_eq!(err("int_attr=1 int_attr=2").position, 11);
        assert_eq!(err("(int_attr=1").position, 11);
        assert_eq!(err("int_attr=1)").position, 10);
        assert_eq!(err("int_attr in ()").position, 13);
        assert_eq!(err("int_attr in (1,)").position, 15);
        assert_eq!(err("int_attr in (1 2)").position, 15);
        assert_eq!(err("int_attr not (1)").position, 13);
        assert_eq!(err("int_attr in 1").position, 12);
        assert_eq!(err("int_attr 1").position, 9);
        assert_eq!(err("int_attr").position, 8);
        assert!(
            err("intAttr2 1").reason.contains("after intAttr2,"),
            "names are echoed as written"
        );
        assert_eq!(err("AND int_attr=1").position, 0);
        assert_eq!(err("int_attr=2147483648").position, 9);
        assert_eq!(canonical("int_attr=-2147483648"), "int_attr=-2147483648");
    }

    #[test]
    fn nesting_is_capped() {
        let ok = format!(
            "{}int_attr=1{}",
            "(".repeat(MAX_DEPTH),
            ")".repeat(MAX_DEPTH)
        );
        assert!(parse(&ok, 4096).is_ok());
        let deep = format!(
            "{}int_attr=1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(
            parse(&deep, 4096).expect_err("too deep").position,
            MAX_DEPTH
        );
        // Unclosed parentheses far beyond the cap stop at the cap, not at the stack.
        assert!(parse(&"(".repeat(100_000), usize::MAX).is_err());
    }
}
