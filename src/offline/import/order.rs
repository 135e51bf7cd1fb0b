//! The order an import applies its source in, shared by the offline import and the one
//! through a server: the entries are cut into runs of ADDs that touch distinct
//! (ProductId, PicName), which may go in parallel; a DELETE, or an ADD of a name already
//! in the run, waits for the run before it. The result is the one a line-by-line
//! application would give, with as much parallelism as that allows.

use std::collections::HashSet;

use crate::offline::sources::{Action, Entry};

/// One step of an import, in source order; each index is the entry's place in the source.
#[derive(Debug)]
pub(super) enum Step<'a> {
    /// An entry the source reader refused, with its reason.
    Invalid(usize, &'a Entry, &'a str),
    /// ADDs of distinct names: they may be applied in any order, in parallel.
    Adds(Vec<(usize, &'a Entry)>),
    /// A DELETE of one picture (`Some` PicName) or of a whole product.
    Delete(usize, &'a Entry, &'a str, Option<&'a str>),
}

/// The steps that apply `entries` in order.
pub(super) fn steps(entries: &[Entry]) -> Vec<Step<'_>> {
    // Invalid entries are reported first: they change nothing, so they cut no run.
    let mut invalid = Vec::new();
    let mut steps = Vec::new();
    let mut run: Vec<(usize, &Entry)> = Vec::new();
    let mut names: HashSet<(&str, &str)> = HashSet::new();
    for (i, entry) in entries.iter().enumerate() {
        match &entry.action {
            Action::Invalid(reason) => invalid.push(Step::Invalid(i, entry, reason)),
            Action::Add { line, .. } => {
                if !names.insert((&line.product_id, &line.pic_name)) {
                    close_run(&mut steps, &mut run, &mut names);
                    names.insert((&line.product_id, &line.pic_name));
                }
                run.push((i, entry));
            }
            Action::Delete {
                product_id,
                pic_name,
            } => {
                close_run(&mut steps, &mut run, &mut names);
                steps.push(Step::Delete(i, entry, product_id, pic_name.as_deref()));
            }
        }
    }
    close_run(&mut steps, &mut run, &mut names);
    invalid.extend(steps);
    invalid
}

/// Ends the current run of ADDs (if any) as a step.
fn close_run<'a>(
    steps: &mut Vec<Step<'a>>,
    run: &mut Vec<(usize, &'a Entry)>,
    names: &mut HashSet<(&'a str, &'a str)>,
) {
    if !run.is_empty() {
        steps.push(Step::Adds(std::mem::take(run)));
    }
    names.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::meta_line::AddLine;
    use crate::engine::Attributes;

    fn add(product: &str, pic: &str) -> Entry {
        Entry {
            location: format!("{product}/{pic}"),
            action: Action::Add {
                file: format!("{product}/{pic}").into(),
                line: Box::new(AddLine {
                    product_id: product.into(),
                    pic_name: pic.into(),
                    category_id: None,
                    crop: true,
                    region: None,
                    attributes: Attributes::default(),
                }),
            },
        }
    }

    fn delete(product: &str) -> Entry {
        Entry {
            location: format!("delete {product}"),
            action: Action::Delete {
                product_id: product.into(),
                pic_name: None,
            },
        }
    }

    /// The steps as short strings: `a0,1` is a run of entries 0 and 1, `d2` a delete.
    fn shape(entries: &[Entry]) -> Vec<String> {
        steps(entries)
            .iter()
            .map(|s| match s {
                Step::Invalid(i, ..) => format!("x{i}"),
                Step::Adds(run) => {
                    let is: Vec<String> = run.iter().map(|(i, _)| i.to_string()).collect();
                    format!("a{}", is.join(","))
                }
                Step::Delete(i, ..) => format!("d{i}"),
            })
            .collect()
    }

    #[test]
    fn runs_break_at_a_repeated_name_and_at_every_delete() {
        let entries = vec![
            add("p", "1"),
            add("p", "2"),
            add("p", "1"), // the same name again: waits for the run before
            add("q", "1"),
            delete("p"),
            add("p", "1"),
            Entry {
                location: "bad".into(),
                action: Action::Invalid("no such file".into()),
            },
        ];
        assert_eq!(shape(&entries), ["x6", "a0,1", "a2,3", "d4", "a5"]);
        assert!(shape(&[]).is_empty());
        assert_eq!(shape(&[delete("p"), delete("q")]), ["d0", "d1"]);
    }
}
