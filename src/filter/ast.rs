//! The parsed filter: attribute fields, comparisons and the AND/OR tree.
//!
//! Integer and string attributes are distinct types, so a tree can only hold
//! comparisons that make sense (no `<` on a string, no string value for an int).
//! `Display` prints canonical filter text that parses back to the same tree: the
//! snake_case field names, uppercase `AND`/`OR`, lowercase `in`/`not in`, and
//! parentheses only where precedence needs them.

use std::fmt::{self, Write};

/// How many IntAttr and how many StrAttr columns a row has.
pub const NUM_ATTRS: usize = 4;

/// Canonical names, indexed by slot; the first has no number, as in the vendor's API.
const INT_NAMES: [&str; NUM_ATTRS] = ["int_attr", "int_attr2", "int_attr3", "int_attr4"];
const STR_NAMES: [&str; NUM_ATTRS] = ["str_attr", "str_attr2", "str_attr3", "str_attr4"];

/// One of the four integer attributes (IntAttr..IntAttr4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntField(u8);

/// One of the four string attributes (StrAttr..StrAttr4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StrField(u8);

/// An attribute named in a filter, of either kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// An integer attribute.
    Int(IntField),
    /// A string attribute.
    Str(StrField),
}

impl IntField {
    /// IntAttr number `slot` (0..4), or `None` when out of range.
    pub fn new(slot: usize) -> Option<Self> {
        u8::try_from(slot)
            .ok()
            .filter(|&s| usize::from(s) < NUM_ATTRS)
            .map(IntField)
    }

    /// Column index (0..4).
    pub fn slot(self) -> usize {
        usize::from(self.0)
    }

    /// Canonical filter name (`int_attr`, `int_attr2`, ...).
    pub fn name(self) -> &'static str {
        INT_NAMES.get(self.slot()).copied().unwrap_or("int_attr")
    }
}

impl StrField {
    /// StrAttr number `slot` (0..4), or `None` when out of range.
    pub fn new(slot: usize) -> Option<Self> {
        u8::try_from(slot)
            .ok()
            .filter(|&s| usize::from(s) < NUM_ATTRS)
            .map(StrField)
    }

    /// Column index (0..4).
    pub fn slot(self) -> usize {
        usize::from(self.0)
    }

    /// Canonical filter name (`str_attr`, `str_attr2`, ...).
    pub fn name(self) -> &'static str {
        STR_NAMES.get(self.slot()).copied().unwrap_or("str_attr")
    }
}

impl Field {
    /// The field a filter name denotes: `int_attr`, `int_attr1`..`int_attr4`,
    /// `intAttr`, `intAttr1`..`intAttr4`, and the same for `str`; `None` otherwise.
    pub fn from_name(name: &str) -> Option<Field> {
        let (rest, int) = if let Some(r) = name.strip_prefix("int_attr") {
            (r, true)
        } else if let Some(r) = name.strip_prefix("intAttr") {
            (r, true)
        } else if let Some(r) = name.strip_prefix("str_attr") {
            (r, false)
        } else if let Some(r) = name.strip_prefix("strAttr") {
            (r, false)
        } else {
            return None;
        };
        // Both "" and "1" name the first attribute; the vendor writes it without a number.
        let slot = match rest {
            "" | "1" => 0,
            "2" => 1,
            "3" => 2,
            "4" => 3,
            _ => return None,
        };
        if int {
            IntField::new(slot).map(Field::Int)
        } else {
            StrField::new(slot).map(Field::Str)
        }
    }
}

/// An integer comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `=`
    Eq,
    /// `!=`
    Ne,
}

impl CmpOp {
    /// The operator as written in a filter.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
        }
    }

    /// Whether `left <op> right` holds.
    pub fn holds(self, left: i32, right: i32) -> bool {
        match self {
            CmpOp::Lt => left < right,
            CmpOp::Le => left <= right,
            CmpOp::Gt => left > right,
            CmpOp::Ge => left >= right,
            CmpOp::Eq => left == right,
            CmpOp::Ne => left != right,
        }
    }
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    /// `int_attr <op> value`.
    IntCmp {
        /// Attribute compared.
        field: IntField,
        /// Comparison.
        op: CmpOp,
        /// Right-hand side.
        value: i32,
    },
    /// `int_attr in (v, ...)`, or `not in` when `negated`.
    IntIn {
        /// Attribute tested.
        field: IntField,
        /// True for `not in`.
        negated: bool,
        /// Listed values (at least one when parsed).
        values: Vec<i32>,
    },
    /// `str_attr = "v"`, or `!=` when `negated`.
    StrEq {
        /// Attribute compared.
        field: StrField,
        /// True for `!=`.
        negated: bool,
        /// Right-hand side, escapes resolved.
        value: String,
    },
    /// `str_attr in ("v", ...)`, or `not in` when `negated`.
    StrIn {
        /// Attribute tested.
        field: StrField,
        /// True for `not in`.
        negated: bool,
        /// Listed values (at least one when parsed), escapes resolved.
        values: Vec<String>,
    },
    /// All of the operands hold (parsed ones have at least two).
    And(Vec<Expr>),
    /// At least one operand holds (parsed ones have at least two).
    Or(Vec<Expr>),
}

/// Writes `value` as a double-quoted filter string, escaping `"` and `\`.
fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in value.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        f.write_char(c)?;
    }
    f.write_str("\"")
}

/// Writes `items` separated by `sep`, each with `write_one`.
fn write_list<T>(
    f: &mut fmt::Formatter<'_>,
    items: &[T],
    sep: &str,
    mut write_one: impl FnMut(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write_one(f, item)?;
    }
    Ok(())
}

/// Canonical filter text; parses back to an equal `Expr` when every AND/OR has at
/// least two operands and every list at least one value (as parsed ones do).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let not = |negated: bool| if negated { "not " } else { "" };
        match self {
            Expr::IntCmp { field, op, value } => {
                write!(f, "{}{}{value}", field.name(), op.symbol())
            }
            Expr::IntIn {
                field,
                negated,
                values,
            } => {
                write!(f, "{} {}in (", field.name(), not(*negated))?;
                write_list(f, values, ",", |f, v| write!(f, "{v}"))?;
                f.write_str(")")
            }
            Expr::StrEq {
                field,
                negated,
                value,
            } => {
                f.write_str(field.name())?;
                f.write_str(if *negated { "!=" } else { "=" })?;
                write_quoted(f, value)
            }
            Expr::StrIn {
                field,
                negated,
                values,
            } => {
                write!(f, "{} {}in (", field.name(), not(*negated))?;
                write_list(f, values, ",", |f, v| write_quoted(f, v))?;
                f.write_str(")")
            }
            // A nested AND/OR is parenthesised even where precedence would not need
            // it, so the printed text re-parses to the same nesting, not a flattened one.
            Expr::And(items) => write_list(f, items, " AND ", |f, e| match e {
                Expr::And(_) | Expr::Or(_) => write!(f, "({e})"),
                _ => write!(f, "{e}"),
            }),
            Expr::Or(items) => write_list(f, items, " OR ", |f, e| match e {
                Expr::Or(_) => write!(f, "({e})"),
                _ => write!(f, "{e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(slot: usize) -> IntField {
        IntField::new(slot).expect("slot in range")
    }

    fn s(slot: usize) -> StrField {
        StrField::new(slot).expect("slot in range")
    }

    #[test]
    fn names_map_to_slots_in_both_spellings() {
        assert_eq!(Field::from_name("int_attr"), Some(Field::Int(int(0))));
        assert_eq!(Field::from_name("int_attr1"), Some(Field::Int(int(0))));
        assert_eq!(Field::from_name("intAttr4"), Some(Field::Int(int(3))));
        assert_eq!(Field::from_name("strAttr"), Some(Field::Str(s(0))));
        assert_eq!(Field::from_name("str_attr3"), Some(Field::Str(s(2))));
        for bad in [
            "int_attr5",
            "int_attr0",
            "IntAttr",
            "str_attr_2",
            "attr",
            "",
            "int_attr12",
        ] {
            assert_eq!(Field::from_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn out_of_range_slots_are_refused() {
        assert!(IntField::new(4).is_none());
        assert!(StrField::new(usize::MAX).is_none());
        assert_eq!(int(2).name(), "int_attr3");
        assert_eq!(s(0).name(), "str_attr");
    }

    #[test]
    fn leaves_print_canonically() {
        let e = Expr::IntCmp {
            field: int(1),
            op: CmpOp::Ge,
            value: -5,
        };
        assert_eq!(e.to_string(), "int_attr2>=-5");
        let e = Expr::StrEq {
            field: s(0),
            negated: true,
            value: "a\"b\\".into(),
        };
        assert_eq!(e.to_string(), r#"str_attr!="a\"b\\""#);
        let e = Expr::IntIn {
            field: int(0),
            negated: true,
            values: vec![1, 2],
        };
        assert_eq!(e.to_string(), "int_attr not in (1,2)");
        let e = Expr::StrIn {
            field: s(3),
            negated: false,
            values: vec!["x".into(), "".into()],
        };
        assert_eq!(e.to_string(), r#"str_attr4 in ("x","")"#);
    }

    #[test]
    fn nesting_is_parenthesised() {
        let a = Expr::IntCmp {
            field: int(0),
            op: CmpOp::Lt,
            value: 1,
        };
        let b = Expr::IntCmp {
            field: int(1),
            op: CmpOp::Gt,
            value: 2,
        };
        let or = Expr::Or(vec![a.clone(), b.clone()]);
        let and = Expr::And(vec![or.clone(), a.clone()]);
        assert_eq!(
            and.to_string(),
            "(int_attr<1 OR int_attr2>2) AND int_attr<1"
        );
        let top = Expr::Or(vec![and, or, b]);
        assert_eq!(
            top.to_string(),
            "(int_attr<1 OR int_attr2>2) AND int_attr<1 OR (int_attr<1 OR int_attr2>2) OR int_attr2>2"
        );
    }

    #[test]
    fn comparisons_hold_as_written() {
        assert!(CmpOp::Lt.holds(1, 2) && !CmpOp::Lt.holds(2, 2));
        assert!(CmpOp::Le.holds(2, 2) && CmpOp::Ge.holds(2, 2));
        assert!(CmpOp::Ne.holds(1, 2) && !CmpOp::Eq.holds(1, 2));
    }
}
