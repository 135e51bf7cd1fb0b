//! Compiled filters: an [`Expr`] resolved against one attribute dictionary for fast
//! per-row evaluation.
//!
//! A scan tests the filter on up to millions of rows, so all the work that does not
//! depend on the row happens once, here: string values become dictionary ids (a
//! value no row ever had cannot match `=`/`in` and always matches `!=`/`not in`),
//! integer comparisons become inclusive ranges, value lists are sorted for binary
//! search, and branches that are constant fold away. What is left is a small tree
//! whose evaluation reads integer columns and compares integers, nothing else.

use super::ast::{CmpOp, Expr};

/// Where a compiled filter reads attribute values of a row.
pub trait AttributeSource: Sync {
    /// IntAttr number `attr` (0..4) of `row`; 0 when absent.
    fn int(&self, attr: usize, row: usize) -> i32;
    /// Dictionary id of StrAttr number `attr` (0..4) of `row` (the id of "" when absent).
    fn str_id(&self, attr: usize, row: usize) -> u32;
    /// Dictionary id of a string value for StrAttr number `attr`, if any row ever had it.
    fn lookup_str(&self, attr: usize, value: &str) -> Option<u32>;
    /// IntAttr number `attr` of rows `first..first + 64` (a source with columns reads
    /// them in one go; this default asks row by row).
    fn ints(&self, attr: usize, first: usize, out: &mut [i32; 64]) {
        for (i, v) in out.iter_mut().enumerate() {
            *v = self.int(attr, first + i);
        }
    }
    /// Dictionary ids of StrAttr number `attr` of rows `first..first + 64`.
    fn str_ids(&self, attr: usize, first: usize, out: &mut [u32; 64]) {
        for (i, v) in out.iter_mut().enumerate() {
            *v = self.str_id(attr, first + i);
        }
    }
}

/// Lists up to this long are scanned linearly; longer ones are binary-searched.
const LINEAR_LIST: usize = 8;

/// An [`Expr`] with values resolved, ready to test rows of one [`AttributeSource`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFilter {
    pub(super) root: Node,
}

/// One step of a compiled filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Node {
    /// Holds for every row, or for none.
    Const(bool),
    /// `lo <= int <= hi`: every comparison except `!=`.
    IntRange {
        attr: usize,
        lo: i32,
        hi: i32,
    },
    /// `int != value`.
    IntNe {
        attr: usize,
        value: i32,
    },
    /// `int in values` (sorted, deduplicated), or `not in` when `negated`.
    IntIn {
        attr: usize,
        negated: bool,
        values: Box<[i32]>,
    },
    /// `str_id == id`, or `!=` when `negated`.
    StrEq {
        attr: usize,
        negated: bool,
        id: u32,
    },
    /// `str_id in ids` (sorted, deduplicated), or `not in` when `negated`.
    StrIn {
        attr: usize,
        negated: bool,
        ids: Box<[u32]>,
    },
    And(Box<[Node]>),
    Or(Box<[Node]>),
}

impl CompiledFilter {
    /// Resolves `expr` against `source`'s dictionaries; the result is valid for that
    /// source as long as its dictionary ids do not change.
    pub fn compile(expr: &Expr, source: &dyn AttributeSource) -> CompiledFilter {
        CompiledFilter {
            root: compile_node(expr, source),
        }
    }

    /// Whether `row` of `source` matches.
    #[inline]
    pub fn matches(&self, source: &dyn AttributeSource, row: usize) -> bool {
        eval(&self.root, source, row)
    }

    /// `Some(answer)` when every row gets the same answer, so a scan can skip the test
    /// (or skip the scan); `None` when it depends on the row.
    pub fn constant(&self) -> Option<bool> {
        match self.root {
            Node::Const(answer) => Some(answer),
            _ => None,
        }
    }
}

fn eval(node: &Node, source: &dyn AttributeSource, row: usize) -> bool {
    match node {
        Node::Const(answer) => *answer,
        Node::IntRange { attr, lo, hi } => (*lo..=*hi).contains(&source.int(*attr, row)),
        Node::IntNe { attr, value } => source.int(*attr, row) != *value,
        Node::IntIn {
            attr,
            negated,
            values,
        } => contains(values, source.int(*attr, row)) != *negated,
        Node::StrEq { attr, negated, id } => (source.str_id(*attr, row) == *id) != *negated,
        Node::StrIn { attr, negated, ids } => contains(ids, source.str_id(*attr, row)) != *negated,
        Node::And(items) => items.iter().all(|n| eval(n, source, row)),
        Node::Or(items) => items.iter().any(|n| eval(n, source, row)),
    }
}

/// Membership in a sorted list.
#[inline]
pub(super) fn contains<T: Ord + Copy>(sorted: &[T], value: T) -> bool {
    if sorted.len() <= LINEAR_LIST {
        sorted.contains(&value)
    } else {
        sorted.binary_search(&value).is_ok()
    }
}

/// The inclusive range `int <op> value` selects, or `None` for `!=` (not a range).
/// An empty range (e.g. `< i32::MIN`) comes back as `lo > hi`.
fn range(op: CmpOp, value: i32) -> Option<(i32, i32)> {
    Some(match op {
        CmpOp::Eq => (value, value),
        CmpOp::Le => (i32::MIN, value),
        CmpOp::Ge => (value, i32::MAX),
        CmpOp::Lt => match value.checked_sub(1) {
            Some(hi) => (i32::MIN, hi),
            None => (1, 0),
        },
        CmpOp::Gt => match value.checked_add(1) {
            Some(lo) => (lo, i32::MAX),
            None => (1, 0),
        },
        CmpOp::Ne => return None,
    })
}

/// A range node, folded to a constant when it is empty or covers every value.
fn range_node(attr: usize, lo: i32, hi: i32) -> Node {
    if lo > hi {
        Node::Const(false)
    } else if lo == i32::MIN && hi == i32::MAX {
        Node::Const(true)
    } else {
        Node::IntRange { attr, lo, hi }
    }
}

fn compile_node(expr: &Expr, source: &dyn AttributeSource) -> Node {
    match expr {
        Expr::IntCmp { field, op, value } => match range(*op, *value) {
            Some((lo, hi)) => range_node(field.slot(), lo, hi),
            None => Node::IntNe {
                attr: field.slot(),
                value: *value,
            },
        },
        Expr::IntIn {
            field,
            negated,
            values,
        } => {
            let attr = field.slot();
            let mut values = values.clone();
            values.sort_unstable();
            values.dedup();
            match (values.as_slice(), *negated) {
                ([], negated) => Node::Const(negated),
                ([v], false) => range_node(attr, *v, *v),
                ([v], true) => Node::IntNe { attr, value: *v },
                _ => Node::IntIn {
                    attr,
                    negated: *negated,
                    values: values.into_boxed_slice(),
                },
            }
        }
        Expr::StrEq {
            field,
            negated,
            value,
        } => {
            let attr = field.slot();
            match source.lookup_str(attr, value) {
                Some(id) => Node::StrEq {
                    attr,
                    negated: *negated,
                    id,
                },
                None => Node::Const(*negated),
            }
        }
        Expr::StrIn {
            field,
            negated,
            values,
        } => {
            let attr = field.slot();
            let mut ids: Vec<u32> = values
                .iter()
                .filter_map(|v| source.lookup_str(attr, v))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            match ids.as_slice() {
                [] => Node::Const(*negated),
                [id] => Node::StrEq {
                    attr,
                    negated: *negated,
                    id: *id,
                },
                _ => Node::StrIn {
                    attr,
                    negated: *negated,
                    ids: ids.into_boxed_slice(),
                },
            }
        }
        Expr::And(items) => connective(items, source, true),
        Expr::Or(items) => connective(items, source, false),
    }
}

/// An AND (`is_and`) or OR of `items`, with constants folded and same-kind children
/// merged in. `unit` is the answer of an empty connective; its opposite decides it.
fn connective(items: &[Expr], source: &dyn AttributeSource, is_and: bool) -> Node {
    let unit = is_and;
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        match compile_node(item, source) {
            Node::Const(answer) if answer == unit => {}
            Node::Const(_) => return Node::Const(!unit),
            Node::And(inner) if is_and => kept.extend(inner.into_vec()),
            Node::Or(inner) if !is_and => kept.extend(inner.into_vec()),
            node => kept.push(node),
        }
    }
    match kept.len() {
        0 => Node::Const(unit),
        1 => kept.pop().unwrap_or(Node::Const(unit)),
        _ if is_and => Node::And(kept.into_boxed_slice()),
        _ => Node::Or(kept.into_boxed_slice()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse;

    /// Two rows; StrAttr dictionaries: id 0 is "", then "red", "blue".
    struct Rows;

    impl AttributeSource for Rows {
        fn int(&self, attr: usize, row: usize) -> i32 {
            [[5, 0, 0, 0], [-7, 3, 0, 0]][row][attr]
        }
        fn str_id(&self, attr: usize, row: usize) -> u32 {
            [[1, 0, 0, 0], [2, 0, 0, 0]][row][attr]
        }
        fn lookup_str(&self, _attr: usize, value: &str) -> Option<u32> {
            ["", "red", "blue"]
                .iter()
                .position(|s| *s == value)
                .map(|i| i as u32)
        }
    }

    fn compiled(filter: &str) -> CompiledFilter {
        CompiledFilter::compile(&parse(filter, 4096).expect("valid filter"), &Rows)
    }

    fn rows_matching(filter: &str) -> Vec<usize> {
        let f = compiled(filter);
        (0..2).filter(|&r| f.matches(&Rows, r)).collect()
    }

    #[test]
    fn evaluates_rows() {
        assert_eq!(rows_matching("int_attr>0"), [0]);
        assert_eq!(rows_matching("int_attr<=-7 AND str_attr=\"blue\""), [1]);
        assert_eq!(
            rows_matching("str_attr in (\"red\",\"blue\",\"green\")"),
            [0, 1]
        );
        assert_eq!(
            rows_matching("int_attr not in (5,6,7,8,9,10,11,12,13,14)"),
            [1]
        );
        assert_eq!(rows_matching("str_attr2=\"\" AND int_attr2 in (3)"), [1]);
    }

    #[test]
    fn unseen_strings_fold_to_constants() {
        assert_eq!(compiled("str_attr=\"green\"").constant(), Some(false));
        assert_eq!(compiled("str_attr!=\"green\"").constant(), Some(true));
        assert_eq!(
            compiled("str_attr not in (\"green\",\"pink\")").constant(),
            Some(true)
        );
        assert_eq!(
            compiled("str_attr=\"green\" AND int_attr=5").constant(),
            Some(false)
        );
        assert_eq!(
            compiled("str_attr=\"green\" OR int_attr=5"),
            compiled("int_attr=5")
        );
        assert_eq!(compiled("str_attr=\"red\"").constant(), None);
    }

    #[test]
    fn integer_edges_fold_to_constants() {
        assert_eq!(compiled("int_attr<-2147483648").constant(), Some(false));
        assert_eq!(compiled("int_attr>2147483647").constant(), Some(false));
        assert_eq!(compiled("int_attr>=-2147483648").constant(), Some(true));
        assert_eq!(
            compiled("int_attr<=2147483647 AND int_attr2>=-2147483648").constant(),
            Some(true)
        );
    }

    #[test]
    fn nested_connectives_flatten() {
        let f = compiled("(int_attr=1 AND int_attr2=2) AND (int_attr3=3 AND int_attr4=4)");
        assert!(matches!(&f.root, Node::And(items) if items.len() == 4));
    }
}
