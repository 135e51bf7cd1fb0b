//! What a search is asked and what it answers: the query, one result, the outcome of a
//! search by picture or name, the outcome of a listing by filter, and the reported score.

use crate::engine::instance::Subject;
use crate::filter::Expr;
use crate::store::Record;

/// Candidates fetched per wanted result when each product may appear once.
pub(in crate::engine) const DISTINCT_OVERSAMPLING: usize = 8;

/// A search by vector.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Category to stay within (product instances predict one when absent).
    pub category_id: Option<u32>,
    /// Results skipped.
    pub start: usize,
    /// Results returned at most.
    pub num: usize,
    /// Least score returned.
    pub min_score: f32,
    /// Keep only the best picture of each product.
    pub distinct_product: bool,
    /// Attribute filter.
    pub filter: Option<Expr>,
    /// With Crop and no Region, search a busy scene by windows too
    /// ([`Instance::analyse_views`]). Off in the server for now: it costs ~30 extractions
    /// per such query (1–2 s with a model); `imgsearch-eval --windows true` turns it on.
    pub scene_windows: bool,
    /// With Crop and no Region, search a busy scene by segment proposals too: each
    /// proposal's silhouette on white is one more view ([`Instance::analyse_views`],
    /// up to [`super::SCENE_PROPOSALS`] extractions). `imgsearch-eval --proposals true`.
    pub scene_proposals: bool,
    /// Run every stage the instance and query allow, even when the vector ranking
    /// already decides (no cascade; `imgsearch-eval --exhaustive true`, for comparison).
    pub exhaustive: bool,
    /// Average query expansion: an undecided single-view ranking is searched again with
    /// the mean of the query and its first this-many results' vectors (0: off;
    /// `expansion.rs`, `imgsearch-eval --query-expansion K`).
    pub query_expansion: usize,
    /// k-reciprocal re-ranking of a shortlist neither decisive nor verified
    /// (`reciprocal.rs`; `None`: off). The server asks [`super::Reciprocal::DEFAULT`].
    pub reciprocal: Option<super::Reciprocal>,
    /// Keep the vector ranking's first result of a search that neither decided nor
    /// verified, instead of the best picture of the product its first results vote for
    /// (`product_vote.rs`; `imgsearch-eval --product-vote false`, the before).
    pub keep_first: bool,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Score 0..1.
    pub score: f64,
    /// The picture's doc id (which row of the store it is).
    pub doc: u64,
    /// The picture's record.
    pub record: Record,
}

/// What a search reports.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    /// Subject and category of the query picture.
    pub subject: Subject,
    /// Pictures that matched (category, filter, threshold).
    pub docs_found: usize,
    /// The page asked for, best first.
    pub results: Vec<Found>,
}

/// What SearchImageByFilter reports.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterOutcome {
    /// Pictures the filter matches.
    pub docs_found: usize,
    /// The page asked for, oldest first.
    pub records: Vec<Record>,
}

/// Score 0..1 as reported: cosine clamped, rounded to 6 places so an identical picture is 1.0.
pub(in crate::engine) fn score_of(dot: f32) -> f64 {
    ((dot as f64).clamp(0.0, 1.0) * 1e6).round() / 1e6
}
