//! Reference semantics: an [`Expr`] evaluated directly on one record's values.
//!
//! This is the plain reading of the language, with no dictionary and no
//! simplification, so it serves both callers with a handful of records and the
//! tests that check [`CompiledFilter`](super::CompiledFilter) against it. Absent
//! attributes are the caller's to substitute: 0 for an IntAttr, "" for a StrAttr.

use super::ast::{Expr, NUM_ATTRS};

/// Whether a record with IntAttr values `ints` and StrAttr values `strs` matches `expr`.
pub fn matches_record(expr: &Expr, ints: &[i32; NUM_ATTRS], strs: &[&str; NUM_ATTRS]) -> bool {
    // Slots are < NUM_ATTRS by construction of the field types; `get` keeps that an
    // invariant of the types rather than a reason to panic here.
    let int = |slot: usize| ints.get(slot).copied().unwrap_or(0);
    let string = |slot: usize| strs.get(slot).copied().unwrap_or("");
    match expr {
        Expr::IntCmp { field, op, value } => op.holds(int(field.slot()), *value),
        Expr::IntIn {
            field,
            negated,
            values,
        } => values.contains(&int(field.slot())) != *negated,
        Expr::StrEq {
            field,
            negated,
            value,
        } => (string(field.slot()) == value) != *negated,
        Expr::StrIn {
            field,
            negated,
            values,
        } => {
            let v = string(field.slot());
            values.iter().any(|x| x == v) != *negated
        }
        Expr::And(items) => items.iter().all(|e| matches_record(e, ints, strs)),
        Expr::Or(items) => items.iter().any(|e| matches_record(e, ints, strs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse;

    fn check(filter: &str, ints: [i32; 4], strs: [&str; 4]) -> bool {
        let expr = parse(filter, 4096).expect("valid filter");
        matches_record(&expr, &ints, &strs)
    }

    const NO_STRS: [&str; 4] = ["", "", "", ""];

    #[test]
    fn integer_comparisons() {
        assert!(check("int_attr>=100", [100, 0, 0, 0], NO_STRS));
        assert!(!check("int_attr>100", [100, 0, 0, 0], NO_STRS));
        assert!(check("int_attr2<-3", [0, -4, 0, 0], NO_STRS));
        assert!(check("int_attr4!=1", [1, 1, 1, 0], NO_STRS));
        assert!(check("int_attr not in (1,2,3)", [4, 0, 0, 0], NO_STRS));
        assert!(!check("int_attr in (1,2,3)", [4, 0, 0, 0], NO_STRS));
    }

    #[test]
    fn absent_values_compare_as_zero_and_empty() {
        assert!(check("int_attr3=0", [0; 4], NO_STRS));
        assert!(check("str_attr2=\"\"", [0; 4], NO_STRS));
        assert!(check("str_attr2 not in (\"a\")", [0; 4], NO_STRS));
    }

    #[test]
    fn string_comparisons() {
        let strs = ["value1", "a\"b", "", "x"];
        assert!(check("str_attr=\"value1\"", [0; 4], strs));
        assert!(!check("str_attr!=\"value1\"", [0; 4], strs));
        assert!(check(r#"str_attr2="a\"b""#, [0; 4], strs));
        assert!(check(r#"str_attr4 in ("w","x")"#, [0; 4], strs));
        assert!(!check(r#"str_attr4 not in ("w","x")"#, [0; 4], strs));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // Read as `int_attr=1 OR (int_attr=2 AND int_attr2=5)`.
        let filter = "int_attr=1 OR int_attr=2 AND int_attr2=5";
        assert!(check(filter, [1, 0, 0, 0], NO_STRS));
        assert!(!check(filter, [2, 0, 0, 0], NO_STRS));
        assert!(check(filter, [2, 5, 0, 0], NO_STRS));
    }

    #[test]
    fn the_vendor_example() {
        let filter = r#"(int_attr2<5 OR int_attr2>10) AND str_attr3 in ("a","b")"#;
        assert!(check(filter, [0, 11, 0, 0], ["", "", "b", ""]));
        assert!(!check(filter, [0, 7, 0, 0], ["", "", "b", ""]));
        assert!(!check(filter, [0, 1, 0, 0], ["", "", "c", ""]));
    }

    #[test]
    fn empty_connectives_are_the_identities() {
        assert!(matches_record(&Expr::And(vec![]), &[0; 4], &NO_STRS));
        assert!(!matches_record(&Expr::Or(vec![]), &[0; 4], &NO_STRS));
    }
}
