//! Property tests across the module: hostile text never panics, printing round-trips,
//! and the compiled form agrees with the reference evaluation.
//!
//! Expressions are generated as trees rather than text so every shape is reached,
//! including the edges of the integer range and strings that need escaping; text is
//! generated both as arbitrary Unicode and as a soup of near-valid tokens, because
//! random Unicode alone almost never gets past the first token.

use proptest::prelude::*;

use super::*;

/// Integer values that hit the range edges as well as the ordinary middle.
fn arb_int() -> impl Strategy<Value = i32> {
    prop_oneof![-3i32..=3, Just(i32::MIN), Just(i32::MAX), any::<i32>()]
}

/// String values from a small pool (so rows and filters share some), plus anything.
fn arb_str(wild: bool) -> BoxedStrategy<String> {
    let pool =
        prop::sample::select(vec!["", "a", "b", "c", "a\"b", "\\", "é"]).prop_map(String::from);
    if wild {
        prop_oneof![pool, any::<String>()].boxed()
    } else {
        pool.boxed()
    }
}

fn arb_op() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(vec![
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Eq,
        CmpOp::Ne,
    ])
}

fn arb_int_field() -> impl Strategy<Value = IntField> {
    (0..NUM_ATTRS).prop_filter_map("slot in range", IntField::new)
}

fn arb_str_field() -> impl Strategy<Value = StrField> {
    (0..NUM_ATTRS).prop_filter_map("slot in range", StrField::new)
}

/// Expressions shaped like parsed ones: connectives of two or more, lists of one or more.
fn arb_expr(wild: bool) -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        (arb_int_field(), arb_op(), arb_int()).prop_map(|(field, op, value)| Expr::IntCmp {
            field,
            op,
            value
        }),
        (
            arb_int_field(),
            any::<bool>(),
            prop::collection::vec(arb_int(), 1..5)
        )
            .prop_map(|(field, negated, values)| Expr::IntIn {
                field,
                negated,
                values
            }),
        (arb_str_field(), any::<bool>(), arb_str(wild)).prop_map(|(field, negated, value)| {
            Expr::StrEq {
                field,
                negated,
                value,
            }
        }),
        (
            arb_str_field(),
            any::<bool>(),
            prop::collection::vec(arb_str(wild), 1..5)
        )
            .prop_map(|(field, negated, values)| Expr::StrIn {
                field,
                negated,
                values
            }),
    ];
    leaf.prop_recursive(5, 40, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..5).prop_map(Expr::And),
            prop::collection::vec(inner, 2..5).prop_map(Expr::Or),
        ]
    })
}

/// Text made of filter-ish tokens, valid and broken, glued with or without spaces.
fn arb_token_soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "int_attr",
        "int_attr4",
        "intAttr2",
        "str_attr",
        "strAttr3",
        "str_attr9",
        "AND",
        "or",
        "Not",
        "in",
        "(",
        ")",
        ",",
        "=",
        "!=",
        ">",
        ">=",
        "<",
        "<=",
        "!",
        "-",
        "5",
        "-12",
        "2147483648",
        "\"a\"",
        "\"\\\"\"",
        "\"\\x\"",
        "\"",
        "'",
        "é",
        "\\",
        "#",
        "12ab",
        "==",
    ]);
    prop::collection::vec((token, any::<bool>()), 0..24).prop_map(|parts| {
        parts
            .into_iter()
            .fold(String::new(), |mut text, (t, space)| {
                text.push_str(t);
                if space {
                    text.push(' ');
                }
                text
            })
    })
}

/// Checks what must hold for any input: errors point inside the text (or at the
/// length limit), and whatever parses prints to text that parses to the same tree.
fn check_text(text: &str, max_len: usize) -> Result<(), TestCaseError> {
    match parse(text, max_len) {
        Ok(expr) => {
            let printed = expr.to_string();
            prop_assert_eq!(
                parse(&printed, usize::MAX),
                Ok(expr),
                "printed as {}",
                printed
            );
        }
        Err(e) => {
            prop_assert!(
                e.position <= text.chars().count().max(max_len),
                "{:?} for {:?}",
                e,
                text
            );
            prop_assert!(!e.reason.is_empty());
        }
    }
    Ok(())
}

/// Rows held in the open, with per-attribute dictionaries where "" is always id 0.
struct TestRows {
    ints: Vec<[i32; NUM_ATTRS]>,
    ids: Vec<[u32; NUM_ATTRS]>,
    dicts: Vec<Vec<String>>,
}

impl TestRows {
    fn new(rows: &[([i32; NUM_ATTRS], [String; NUM_ATTRS])]) -> Self {
        let mut dicts = vec![vec![String::new()]; NUM_ATTRS];
        let mut ids = Vec::new();
        for (_, strs) in rows {
            let mut row_ids = [0; NUM_ATTRS];
            for ((id, dict), s) in row_ids.iter_mut().zip(dicts.iter_mut()).zip(strs) {
                *id = match dict.iter().position(|d| d == s) {
                    Some(i) => i as u32,
                    None => {
                        dict.push(s.clone());
                        (dict.len() - 1) as u32
                    }
                };
            }
            ids.push(row_ids);
        }
        TestRows {
            ints: rows.iter().map(|(i, _)| *i).collect(),
            ids,
            dicts,
        }
    }
}

impl AttributeSource for TestRows {
    fn int(&self, attr: usize, row: usize) -> i32 {
        self.ints[row][attr]
    }
    fn str_id(&self, attr: usize, row: usize) -> u32 {
        self.ids[row][attr]
    }
    fn lookup_str(&self, attr: usize, value: &str) -> Option<u32> {
        self.dicts[attr]
            .iter()
            .position(|d| d == value)
            .map(|i| i as u32)
    }
}

fn arb_rows() -> impl Strategy<Value = Vec<([i32; NUM_ATTRS], [String; NUM_ATTRS])>> {
    let ints = prop::array::uniform4(prop_oneof![-3i32..=3, Just(i32::MIN), Just(i32::MAX)]);
    let strs = prop::array::uniform4(
        prop::sample::select(vec!["", "a", "b", "a\"b"]).prop_map(String::from),
    );
    prop::collection::vec((ints, strs), 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>(), max_len in 0usize..300) {
        check_text(&text, max_len)?;
    }

    #[test]
    fn token_soup_never_panics(text in arb_token_soup(), max_len in 0usize..300) {
        check_text(&text, max_len)?;
    }

    #[test]
    fn printing_then_parsing_gives_the_same_tree(expr in arb_expr(true)) {
        let printed = expr.to_string();
        prop_assert_eq!(parse(&printed, usize::MAX), Ok(expr), "printed as {}", printed);
    }

    #[test]
    fn compiled_filters_agree_with_the_reference(expr in arb_expr(false), rows in arb_rows()) {
        let source = TestRows::new(&rows);
        let compiled = CompiledFilter::compile(&expr, &source);
        for (row, (ints, strs)) in rows.iter().enumerate() {
            let strs = [strs[0].as_str(), strs[1].as_str(), strs[2].as_str(), strs[3].as_str()];
            let expected = matches_record(&expr, ints, &strs);
            prop_assert_eq!(compiled.matches(&source, row), expected, "row {} of {}", row, expr);
            if let Some(answer) = compiled.constant() {
                prop_assert_eq!(answer, expected);
            }
        }
    }
}
