//! Attribute filters: the vendor's `Filter` parameter, parsed, printed and evaluated.
//!
//! A filter restricts a search or a delete to rows whose attributes match, for
//! example `(int_attr2<5 OR int_attr2>10) AND str_attr3 in ("a","b")`. [`parse`]
//! turns text into an [`Expr`] (whose `Display` is canonical filter text);
//! [`CompiledFilter::compile`] resolves an `Expr` against one set of attribute
//! dictionaries so that testing a row reads integers and compares integers only;
//! [`matches_record`] evaluates an `Expr` on plain values and is the reference the
//! compiled form is tested against. An absent IntAttr counts as 0 and an absent
//! StrAttr as "".
//!
//! Grammar (whitespace may appear between any two tokens and is never required
//! around operators; the keywords `AND`, `OR`, `in`, `not` are case-insensitive):
//!
//! ```text
//! filter    = or_expr EOF                     ; at most max_len characters, not blank
//! or_expr   = and_expr { "OR" and_expr }      ; AND binds tighter than OR
//! and_expr  = primary { "AND" primary }
//! primary   = "(" or_expr ")" | condition     ; at most 32 "(" open at once
//! condition = int_field int_op integer
//!           | int_field [ "not" ] "in" "(" integer { "," integer } ")"
//!           | str_field ( "=" | "!=" ) string
//!           | str_field [ "not" ] "in" "(" string { "," string } ")"
//! int_op    = ">" | ">=" | "<" | "<=" | "=" | "!="
//! int_field = "int_attr" | "int_attr1" | "int_attr2" | "int_attr3" | "int_attr4"
//!           | "intAttr"  | "intAttr1"  | "intAttr2"  | "intAttr3"  | "intAttr4"
//! str_field = the same with "str" for "int"     ; "…attr" and "…attr1" are one field
//! integer   = [ "-" ] digit { digit }         ; -2147483648 ..= 2147483647
//! string    = '"' { char - ( '"' | '\' ) | '\"' | '\\' } '"'
//! ```

mod ast;
mod compile;
mod error;
mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod proptests;
mod word;

pub use ast::{CmpOp, Expr, Field, IntField, StrField, NUM_ATTRS};
pub use compile::{AttributeSource, CompiledFilter};
pub use error::FilterError;
pub use eval::matches_record;
pub use parser::MAX_DEPTH;

/// Parses filter `text` of at most `max_len` characters into an expression.
pub fn parse(text: &str, max_len: usize) -> Result<Expr, FilterError> {
    // Counting stops just past the limit, so an oversized text costs no more than that.
    if text.chars().nth(max_len).is_some() {
        return Err(error::too_long(text.chars().count(), max_len));
    }
    if text.trim().is_empty() {
        return Err(error::empty());
    }
    let tokens = lexer::tokenize(text)?;
    parser::parse_tokens(&tokens, text.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        parse(text, 256).expect("valid filter").to_string()
    }

    #[test]
    fn vendor_examples_parse_to_canonical_text() {
        assert_eq!(canonical("int_attr>=100"), "int_attr>=100");
        assert_eq!(canonical("str_attr!=\"value1\""), "str_attr!=\"value1\"");
        assert_eq!(
            canonical("int_attr=1000 AND str_attr=\"value1\""),
            "int_attr=1000 AND str_attr=\"value1\""
        );
        assert_eq!(
            canonical("(int_attr2<5 OR int_attr2>10) AND str_attr3 in (\"a\",\"b\")"),
            "(int_attr2<5 OR int_attr2>10) AND str_attr3 in (\"a\",\"b\")"
        );
        assert_eq!(
            canonical("int_attr not in (1,2,3)"),
            "int_attr not in (1,2,3)"
        );
    }

    #[test]
    fn spelling_and_spacing_variants_agree() {
        assert_eq!(
            canonical(" intAttr1 >= -5 and strAttr2 NOT IN ( \"x\" ) "),
            "int_attr>=-5 AND str_attr2 not in (\"x\")"
        );
        assert_eq!(canonical("((int_attr=1))"), "int_attr=1");
        assert_eq!(
            canonical("int_attr in(1)or(int_attr=2)"),
            "int_attr in (1) OR int_attr=2"
        );
    }

    #[test]
    fn length_is_counted_in_characters() {
        let text = format!("str_attr=\"{}\"", "é".repeat(10));
        assert!(parse(&text, 21).is_ok());
        let e = parse(&text, 20).expect_err("too long");
        assert_eq!(e.position, 20);
        assert!(e.reason.contains("21 characters"), "{e}");
        assert_eq!(parse("", 0), Err(error::empty()));
        assert_eq!(parse(" \t\n", 256), Err(error::empty()));
    }
}
