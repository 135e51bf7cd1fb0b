//! A compiled filter decided for 64 rows at once: one bit per row, from the attribute
//! columns read 64 values at a time.
//!
//! Counting the rows a filter keeps (DocsFound) over millions of rows through the per-row
//! test walks the filter's tree once per row; here it is walked once per 64 rows, each
//! comparison runs over a small array the compiler vectorises, and AND / OR become
//! bitwise operations on the words.

use super::compile::{contains, AttributeSource, CompiledFilter, Node};

/// Rows decided per word.
const WORD: usize = 64;

impl CompiledFilter {
    /// Bit `i` set when row `first + i` of `source` matches, for `i` in `0..64`.
    pub fn matches_word(&self, source: &dyn AttributeSource, first: usize) -> u64 {
        eval_word(&self.root, source, first)
    }
}

/// The bits of the 64 values whose `test` holds.
#[inline]
fn bits<T: Copy>(values: &[T; WORD], test: impl Fn(T) -> bool) -> u64 {
    let mut word = 0u64;
    for (i, &v) in values.iter().enumerate() {
        word |= u64::from(test(v)) << i;
    }
    word
}

fn eval_word(node: &Node, source: &dyn AttributeSource, first: usize) -> u64 {
    let ints = |attr: usize| {
        let mut values = [0i32; WORD];
        source.ints(attr, first, &mut values);
        values
    };
    let ids = |attr: usize| {
        let mut values = [0u32; WORD];
        source.str_ids(attr, first, &mut values);
        values
    };
    let flip = |word: u64, negated: bool| if negated { !word } else { word };
    match node {
        Node::Const(answer) => flip(0, *answer),
        Node::IntRange { attr, lo, hi } => bits(&ints(*attr), |v| *lo <= v && v <= *hi),
        Node::IntNe { attr, value } => bits(&ints(*attr), |v| v != *value),
        Node::IntIn {
            attr,
            negated,
            values,
        } => flip(bits(&ints(*attr), |v| contains(values, v)), *negated),
        Node::StrEq { attr, negated, id } => flip(bits(&ids(*attr), |v| v == *id), *negated),
        Node::StrIn {
            attr,
            negated,
            ids: set,
        } => flip(bits(&ids(*attr), |v| contains(set, v)), *negated),
        Node::And(items) => {
            let mut word = u64::MAX;
            for item in items.iter() {
                word &= eval_word(item, source, first);
                if word == 0 {
                    break;
                }
            }
            word
        }
        Node::Or(items) => {
            let mut word = 0;
            for item in items.iter() {
                word |= eval_word(item, source, first);
                if word == u64::MAX {
                    break;
                }
            }
            word
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse;

    /// 300 rows whose attributes are made from the row number; strings "", "a".."e".
    struct Rows;

    impl AttributeSource for Rows {
        fn int(&self, attr: usize, row: usize) -> i32 {
            ((row * (attr + 3)) % 23) as i32 - 11
        }
        fn str_id(&self, attr: usize, row: usize) -> u32 {
            ((row / (attr + 1)) % 6) as u32
        }
        fn lookup_str(&self, _attr: usize, value: &str) -> Option<u32> {
            ["", "a", "b", "c", "d", "e"]
                .iter()
                .position(|s| *s == value)
                .map(|i| i as u32)
        }
    }

    #[test]
    fn a_word_holds_the_rows_that_match() {
        for text in [
            "int_attr>0",
            "int_attr<=-3 AND str_attr=\"b\"",
            "int_attr2!=4 OR str_attr2 in (\"a\",\"c\",\"e\")",
            "int_attr3 in (1,2,3,5,8,13,-1,-2,-3,-5)",
            "int_attr3 not in (1,2,3,5,8,13,-1,-2,-3,-5) AND str_attr4!=\"\"",
            "str_attr3 not in (\"a\",\"d\") OR (int_attr4>=7 AND int_attr4<9)",
            "str_attr=\"zzz\" OR int_attr=2",
            "str_attr!=\"zzz\"",
        ] {
            let filter = CompiledFilter::compile(&parse(text, 4096).unwrap(), &Rows);
            let mut kept = 0;
            for first in [0, 64, 128, 192, 256] {
                let word = filter.matches_word(&Rows, first);
                for i in 0..WORD {
                    let row = first + i;
                    assert_eq!(
                        word >> i & 1 == 1,
                        filter.matches(&Rows, row),
                        "{text} {row}"
                    );
                }
                kept += word.count_ones();
            }
            // Each filter keeps some rows and refuses others, except the constant one.
            assert!(kept > 0, "{text}");
            assert!(kept < 320 || text == "str_attr!=\"zzz\"", "{text}");
        }
    }
}
