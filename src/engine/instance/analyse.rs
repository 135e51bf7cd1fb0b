//! Picture analysis: a picture's bytes become its vector, its subject (box, further
//! boxes, category) and, for searches, its views.
//!
//! Decoding, subject detection, extraction and category prediction happen outside any
//! lock, before a write takes the instance's write lock, and before a search takes its
//! snapshot. A cropped picture of a busy scene is kept whole (the detected box is only
//! a guess); a search of such a scene tries the guess, and optionally search windows and
//! segment proposals, as further [`View`]s.

use image::RgbImage;
use parking_lot::Mutex;
use rayon::prelude::*;

use super::Instance;
use crate::engine::analyser::Analysis;
/// What a picture stores besides its record and vector (the writes use it).
pub(super) use crate::engine::analyser::Extras;
use crate::engine::attributes::COLUMN_CATEGORY;
use crate::engine::category::CATEGORY_OTHER;
use crate::engine::stage_timer::StageTimer;
use crate::engine::Result;
use crate::index::{ScanQuery, ScanRequest};
use crate::vision::{self, Region};

/// One vector of a query picture and the box it was taken from.
#[derive(Debug, Clone)]
pub(in crate::engine) struct View {
    /// The box's vector.
    pub vector: Vec<f32>,
    /// Where in the picture the box is.
    pub region: Region,
    /// The box holds a segment proposal's silhouette on white, so its shape is the
    /// product's own (searches compare it with the stored subject's: `search_views`).
    pub silhouette: bool,
}

impl View {
    /// A view of a plain box (the subject, a detector's guess, a search window).
    pub(in crate::engine) fn of_box(vector: Vec<f32>, region: Region) -> Self {
        View {
            vector,
            region,
            silhouette: false,
        }
    }
}

/// Keypoints of a query picture: many more, as the product may fill a small part of a
/// scene (pasted products: median 5 inliers with 1,000, 15 with 2,500, 16 with 4,000).
pub const QUERY_LOCAL_POINTS: usize = 2500;
/// Keypoints of a query Crop found to be a product shot (no busy scene around it): the
/// product fills the picture, so fewer points meet as many of its corners.
pub const QUERY_SHOT_POINTS: usize = 1000;

/// A decoded query picture and whether Crop found it a busy scene.
pub(in crate::engine) struct QueryPicture {
    /// The decoded pixels.
    picture: vision::Picture,
    /// Crop met a busy scene: the subject box is a guess.
    pub scene: bool,
    /// These pixels are an exposure-balanced copy of the query's
    /// ([`Self::exposure_balanced`]): its tone was not a catalogue shot's.
    pub balanced: bool,
    /// A busy scene's query keypoints when found ahead, beside its extraction (taken by
    /// [`Instance::query_local_features`]).
    keypoints: Mutex<Option<vision::LocalFeatures>>,
    /// A busy scene's segment proposals when found ahead (taken by
    /// [`Instance::segment_proposals`]).
    segmented: Mutex<Option<Vec<vision::Proposal>>>,
    /// A model scene's silhouettes the network ran on, each with its box (left by the
    /// screened proposals for the silhouette check, `search/silhouette_check.rs`).
    silhouettes: Mutex<Vec<(Region, RgbImage)>>,
}

impl QueryPicture {
    /// The product shot with its dimmed or tinted plain background brought back to
    /// white ([`vision::Picture::exposure_balanced`]); `None` for a scene or a picture
    /// that needs nothing.
    pub(in crate::engine) fn exposure_balanced(&self) -> Option<QueryPicture> {
        if self.scene {
            return None;
        }
        let picture = self.picture.exposure_balanced()?;
        Some(QueryPicture {
            picture,
            scene: false,
            balanced: true,
            keypoints: Mutex::new(None),
            segmented: Mutex::new(None),
            silhouettes: Mutex::new(Vec::new()),
        })
    }

    /// Keeps a silhouette `composite` of the box `region` for the silhouette check.
    pub(in crate::engine) fn keep_silhouette(&self, region: Region, composite: RgbImage) {
        self.silhouettes.lock().push((region, composite));
    }

    /// The silhouettes kept ([`Self::keep_silhouette`]), taken.
    pub(in crate::engine) fn take_silhouettes(&self) -> Vec<(Region, RgbImage)> {
        std::mem::take(&mut *self.silhouettes.lock())
    }
}

impl std::ops::Deref for QueryPicture {
    type Target = vision::Picture;

    fn deref(&self) -> &vision::Picture {
        &self.picture
    }
}

/// The segment proposals of the busy scene `rgb` ([`vision::propose`]), timed.
fn segments(rgb: &RgbImage) -> Vec<vision::Proposal> {
    let timer = StageTimer::start();
    let found = vision::propose(rgb, SCENE_PROPOSALS);
    timer.lap("segment");
    found
}

/// Neighbours that vote on a predicted category.
const CATEGORY_VOTERS: usize = 5;

/// Segment proposals a busy scene is searched with at most (`SearchQuery::scene_proposals`):
/// each costs an extraction and a scan.
pub const SCENE_PROPOSALS: usize = 12;

/// The subject and category found for a picture (PicInfo).
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    /// Category given or predicted.
    pub category_id: u32,
    /// Region the vector was taken from.
    pub region: Region,
    /// Further subject regions (main one first).
    pub multi_region: Vec<Region>,
}

impl Instance {
    /// Checks a category given by the caller against the service type.
    pub(in crate::engine) fn check_category(&self, category: Option<u32>) -> Result<Option<u32>> {
        self.analyser.check_category(category)
    }

    /// Decodes a picture, finds its subject and extracts its vector.
    pub(in crate::engine) fn analyse(
        &self,
        bytes: &[u8],
        crop: bool,
        region: Option<Region>,
        category: Option<u32>,
    ) -> Result<(Vec<f32>, Subject)> {
        let (vector, subject, _) = self.analyse_with_thumbnail(bytes, crop, region, category, 0)?;
        Ok((vector, subject))
    }

    /// [`Self::analyse`], plus a preview of longest side `thumbnail_side` (0 = none) and,
    /// when the instance keeps them, the stored form of the local features, both made
    /// from the same decoded pixels.
    pub(super) fn analyse_with_thumbnail(
        &self,
        bytes: &[u8],
        crop: bool,
        region: Option<Region>,
        category: Option<u32>,
        thumbnail_side: u32,
    ) -> Result<(Vec<f32>, Subject, Extras)> {
        let (analysis, extras) =
            self.analyser
                .analyse_stored(bytes, crop, region, category, thumbnail_side)?;
        let (vector, subject, _) = self.with_category(analysis);
        Ok((vector, subject, extras))
    }

    /// [`Self::analyse`] as a search sees it: the subject's vector first, then, when a
    /// cropped search finds a busy scene rather than a product shot (so the subject box is
    /// a guess), the detector's box, and with `windows` one vector per search window
    /// ([`vision::search_windows`]), and with `proposals` the segment proposals'
    /// ([`Self::proposal_views`]), each with its box. A product anywhere in the scene then
    /// fills one window well, or stands alone on white in one proposal. The decoded
    /// picture comes back too, so a search can add the costlier views and the query's
    /// local features only when the first vectors do not decide.
    /// With `segment_ahead` (the search would segment a busy scene later), a model
    /// instance segments it now, beside the network runs, and the proposals wait in the
    /// [`QueryPicture`] for [`Self::segment_proposals`]; so do the query's keypoints.
    pub(in crate::engine) fn analyse_views(
        &self,
        bytes: &[u8],
        (windows, proposals, segment_ahead): (bool, bool, bool),
        crop: bool,
        region: Option<Region>,
        category: Option<u32>,
    ) -> Result<(Vec<View>, Subject, QueryPicture)> {
        let category = self.check_category(category)?;
        let picture = self.analyser.decode(bytes)?;
        let full = Region::full(picture.width(), picture.height());
        // A cropped search of a busy scene was analysed whole (see `analyse_picture`); the
        // detector's guess is a second view, and with `windows` so is every search window,
        // extracted beside the whole picture's vector.
        // A model scene's keypoints (needed unless the vector ranking is decisive, which
        // a busy scene's seldom is) are found beside its network runs rather than after.
        let network = self.analyser.extractor().runtime().is_some();
        let early_keypoints = network && self.analyser.local_features();
        let segment_ahead = network && segment_ahead;
        let further = |regions: &[Region], scene: bool| {
            if !scene {
                return (Vec::new(), (None, None));
            }
            let timer = StageTimer::start();
            let mut extra: Vec<Region> = regions
                .first()
                .copied()
                .filter(|r| *r != full)
                .into_iter()
                .collect();
            if windows {
                extra.extend(vision::search_windows(picture.width(), picture.height()));
            }
            let rgb = picture.rgb();
            let (views, ahead) = rayon::join(
                || {
                    let views: Vec<View> = extra
                        .into_par_iter()
                        .map(|w| {
                            let extract = || self.analyser.extractor().extract(rgb, Some(&w));
                            View::of_box(vision::sharing_cores(extract), w)
                        })
                        .collect();
                    timer.lap("windows");
                    views
                },
                || {
                    rayon::join(
                        || {
                            early_keypoints.then(|| {
                                let timer = StageTimer::start();
                                let features =
                                    vision::LocalFeatures::extract(rgb, QUERY_LOCAL_POINTS);
                                timer.lap("local_features");
                                features
                            })
                        },
                        || segment_ahead.then(|| segments(rgb)),
                    )
                },
            );
            (views, ahead)
        };
        let (analysis, (further, (keypoints, segmented))) = self
            .analyser
            .analyse_picture_beside(&picture, crop, region, category, further)?;
        let (vector, subject, scene) = self.with_category(analysis);
        let mut views = vec![View::of_box(vector, subject.region)];
        views.extend(further);
        let picture = QueryPicture {
            picture,
            scene,
            balanced: false,
            keypoints: Mutex::new(keypoints),
            segmented: Mutex::new(segmented),
            silhouettes: Mutex::new(Vec::new()),
        };
        if scene && proposals {
            views.extend(self.proposal_views(&picture));
        }
        Ok((views, subject, picture))
    }

    /// One view per segment proposal of a busy scene ([`vision::propose`]: its silhouette
    /// composited on white, as a catalogue shot would show it); none for a product shot.
    pub(in crate::engine) fn proposal_views(&self, picture: &QueryPicture) -> Vec<View> {
        self.views_of_proposals(picture, self.segment_proposals(picture))
    }

    /// The segment proposals of a busy scene ([`vision::propose`]); none for a product
    /// shot: the half of [`Self::proposal_views`] that runs no extractor.
    pub(in crate::engine) fn segment_proposals(
        &self,
        picture: &QueryPicture,
    ) -> Vec<vision::Proposal> {
        if !picture.scene {
            return Vec::new();
        }
        if let Some(found) = picture.segmented.lock().take() {
            return found;
        }
        segments(picture.rgb())
    }

    /// One view per proposal `found` on `picture`, extracted on every core.
    pub(in crate::engine) fn views_of_proposals(
        &self,
        picture: &QueryPicture,
        found: Vec<vision::Proposal>,
    ) -> Vec<View> {
        if found.is_empty() {
            return Vec::new();
        }
        let timer = StageTimer::start();
        let rgb = picture.rgb();
        let views = found
            .into_par_iter()
            .map(|p| self.proposal_view(&p.composite(rgb), p.region))
            .collect();
        timer.lap("proposals");
        views
    }

    /// The view of a proposal in `region`, given its silhouette on white (`composite`).
    pub(in crate::engine) fn proposal_view(&self, composite: &RgbImage, region: Region) -> View {
        View {
            vector: self.analyser.extractor().extract(composite, None),
            region,
            silhouette: true,
        }
    }

    /// The query's local features when the instance keeps them: [`QUERY_LOCAL_POINTS`]
    /// keypoints in a busy scene (the product may fill a small part of it), fewer
    /// ([`QUERY_SHOT_POINTS`]) in a picture Crop found to be a product shot.
    pub(in crate::engine) fn query_local_features(
        &self,
        picture: &QueryPicture,
        crop: bool,
    ) -> Option<vision::LocalFeatures> {
        self.analyser.local_features().then(|| {
            if let Some(found) = picture.keypoints.lock().take() {
                return found;
            }
            let timer = StageTimer::start();
            let points = if crop && !picture.scene {
                QUERY_SHOT_POINTS
            } else {
                QUERY_LOCAL_POINTS
            };
            let features = vision::LocalFeatures::extract(picture.rgb(), points);
            timer.lap("local_features");
            features
        })
    }

    /// The analysis as a subject with its category (voted by the nearest stored pictures
    /// when the picture alone did not decide it), the vector, and whether Crop met a busy
    /// scene.
    fn with_category(&self, analysis: Analysis) -> (Vec<f32>, Subject, bool) {
        let category_id = analysis
            .category_id
            .unwrap_or_else(|| self.vote_category(&analysis.vector));
        let subject = Subject {
            category_id,
            region: analysis.region,
            multi_region: analysis.multi_region,
        };
        (analysis.vector, subject, analysis.scene)
    }

    /// Category by a similarity-weighted vote of the nearest pictures; Others when the
    /// instance is empty.
    pub(super) fn vote_category(&self, vector: &[f32]) -> u32 {
        let (snap, projection) = self.layer();
        let Some(column) = snap.column(COLUMN_CATEGORY) else {
            return CATEGORY_OTHER;
        };
        let Ok(vector) = projection.apply(vector) else {
            return CATEGORY_OTHER;
        };
        let query = [ScanQuery {
            vector: &vector,
            k: CATEGORY_VOTERS,
        }];
        let request = ScanRequest {
            queries: &query,
            min_score: f32::MIN,
            filter: None,
            collect: false,
        };
        let near = crate::index::scan(&snap, &self.scan_copy, &request)
            .pop()
            .unwrap_or_default();
        let mut votes: Vec<(u32, f32)> = Vec::new();
        for hit in near.hits {
            let c = column.get(hit.row);
            let weight = hit.score.max(0.0) + 1e-6;
            match votes.iter_mut().find(|(id, _)| *id == c) {
                Some(v) => v.1 += weight,
                None => votes.push((c, weight)),
            }
        }
        votes
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(CATEGORY_OTHER, |v| v.0)
    }
}
