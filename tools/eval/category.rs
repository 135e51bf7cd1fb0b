//! The category-accuracy mode: how often a product instance predicts the right
//! CategoryId for a picture added or searched without one.
//!
//! A product instance is filled with labelled pictures (CategoryId given), then every
//! query picture is searched without CategoryId and the category the engine reports
//! for it (`SearchOutcome::subject.category_id`, the one it also searches within) is
//! compared with the label. That is the server's own prediction: the model's ImageNet
//! classes when the model has a class output and one category holds enough of their
//! probability, otherwise a similarity-weighted vote of the nearest labelled pictures.
//!
//! GroceryStore's classes map to the vendor's categories by what the product is
//! (`grocery_category`, table in the README): fruit, vegetables and spoonable dairy are
//! food (6 Snack), drinks in cartons are 8 Bottle. Other data: a `path,category` list.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use imgsearch::engine::{AddPicture, SearchQuery, ServiceType, PRODUCT_CATEGORIES};

use super::{grocery_split, labelled, open_instance, pic_name, spaced, Item, RunOptions};

/// Snack: the vendor's food category.
const SNACK: u32 = 6;
/// Bottle: the vendor's drinks-container category.
const BOTTLE: u32 = 8;
/// GroceryStore coarse classes (the folder under `Packages/`) that are drinks.
const DRINKS: [&str; 5] = ["Juice", "Milk", "Oat-Milk", "Soy-Milk", "Sour-Milk"];

/// The vendor category of a GroceryStore picture, from its path
/// (`<split>/<Fruit|Vegetables|Packages>/<coarse class>/...`).
pub fn grocery_category(path: &Path) -> Option<u32> {
    let parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let top = parts
        .iter()
        .position(|p| p == "Fruit" || p == "Vegetables" || p == "Packages")?;
    match parts[top].as_str() {
        "Packages" => {
            let coarse = parts.get(top + 1)?;
            Some(if DRINKS.contains(&coarse.as_str()) {
                BOTTLE
            } else {
                SNACK
            })
        }
        _ => Some(SNACK),
    }
}

/// Pictures labelled with their category: GroceryStore splits through
/// [`grocery_category`], or a `path,category` list.
pub fn grocery_items(root: &Path, split: &str) -> Result<Vec<Item>> {
    let dataset = root.join("dataset");
    let mut items = grocery_split(&dataset, split)?;
    for item in &mut items {
        let c = grocery_category(&item.path)
            .with_context(|| format!("no category for {}", item.path.display()))?;
        item.label = c.to_string();
    }
    Ok(items)
}

/// Items of a `path,category` list, with the category checked against the vendor's.
pub fn list_items(list: &Path) -> Result<Vec<Item>> {
    let items = labelled(list)?;
    for item in &items {
        let ok = item
            .label
            .parse::<u32>()
            .is_ok_and(|c| PRODUCT_CATEGORIES.iter().any(|(id, _)| *id == c));
        if !ok {
            bail!(
                "{}: {:?} is not a product category id",
                item.path.display(),
                item.label
            );
        }
    }
    Ok(items)
}

/// Category name for reports.
fn name(id: u32) -> &'static str {
    PRODUCT_CATEGORIES
        .iter()
        .find(|(c, _)| *c == id)
        .map_or("?", |(_, n)| n)
}

/// `imgsearch-eval category`: accuracy of the predicted category, overall and per label.
pub fn accuracy(index: &[Item], queries: &[Item], run: &RunOptions) -> Result<()> {
    let index = spaced(index.to_vec(), run.limit);
    let queries = spaced(queries.to_vec(), run.limit);
    let (_guard, _engine, instance) = open_instance(run, ServiceType::Product, index.len())?;
    println!(
        "extractor {}  index {} labelled pictures  queries {}  crop {}",
        instance.meta().extractor,
        index.len(),
        queries.len(),
        run.crop
    );
    let failed = AtomicUsize::new(0);
    index.par_iter().enumerate().try_for_each(|(i, item)| {
        let picture = std::fs::read(&item.path)
            .with_context(|| format!("reading {}", item.path.display()))?;
        let category: u32 = item.label.parse()?;
        let add = AddPicture {
            product_id: format!("p{i}"),
            pic_name: pic_name(i, item),
            picture,
            category_id: Some(category),
            crop: run.crop,
            region: None,
            attributes: Default::default(),
        };
        if let Err(e) = instance.add(add) {
            eprintln!("skipped {}: {e}", item.path.display());
            failed.fetch_add(1, Ordering::Relaxed);
        }
        anyhow::Ok(())
    })?;
    println!(
        "added {}/{}",
        index.len() - failed.load(Ordering::Relaxed),
        index.len()
    );

    let predicted: Vec<Option<u32>> = queries
        .par_iter()
        .map(|q| {
            let bytes = std::fs::read(&q.path).ok()?;
            let query = SearchQuery {
                num: 1,
                scene_windows: run.windows,
                scene_proposals: run.proposals,
                exhaustive: run.exhaustive,
                ..SearchQuery::default()
            };
            match instance.search_by_picture(&bytes, run.crop, None, &query) {
                Ok(found) => Some(found.subject.category_id),
                Err(e) => {
                    eprintln!("query {} failed: {e}", q.path.display());
                    None
                }
            }
        })
        .collect();

    // label -> (queries, right, predicted counts)
    let mut per: BTreeMap<u32, (usize, usize, BTreeMap<u32, usize>)> = BTreeMap::new();
    let (mut total, mut right) = (0usize, 0usize);
    for (q, p) in queries.iter().zip(&predicted) {
        let Some(p) = p else { continue };
        let want: u32 = q.label.parse()?;
        let e = per.entry(want).or_default();
        e.0 += 1;
        total += 1;
        if *p == want {
            e.1 += 1;
            right += 1;
        }
        *e.2.entry(*p).or_default() += 1;
    }
    println!("| label | queries | accuracy | predicted as |");
    println!("|---|---|---|---|");
    for (label, (n, ok, got)) in &per {
        let spread: Vec<String> = got
            .iter()
            .map(|(c, k)| format!("{} {k}", name(*c)))
            .collect();
        println!(
            "| {} ({label}) | {n} | {:.3} | {} |",
            name(*label),
            *ok as f64 / (*n).max(1) as f64,
            spread.join(", ")
        );
    }
    println!(
        "category accuracy {:.3} ({right}/{total} queries)",
        right as f64 / total.max(1) as f64
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grocery_paths_map_by_what_the_product_is() {
        let c = |p: &str| grocery_category(Path::new(p));
        assert_eq!(
            c("/d/train/Fruit/Apple/Pink-Lady/Pink-Lady_001.jpg"),
            Some(6)
        );
        assert_eq!(c("train/Vegetables/Leek/Leek_003.jpg"), Some(6));
        assert_eq!(c("test/Packages/Juice/Bravo-Apple-Juice/x.jpg"), Some(8));
        assert_eq!(
            c("test/Packages/Yoghurt/Yoggi-Vanilla-Yoghurt/x.jpg"),
            Some(6)
        );
        assert_eq!(c("test/Packages/Oat-Milk/Oatly-Oat-Milk/x.jpg"), Some(8));
        assert_eq!(c("elsewhere/x.jpg"), None);
    }
}
