//! The analysis that needs no stored data: picture bytes become a vector, a subject box
//! and, when the picture alone decides it, a category, plus the stored extras (preview,
//! local features), all made from the same decoded pixels.
//!
//! An [`Instance`](super::Instance) holds one and adds what needs its data (a category
//! voted by the nearest stored pictures); `imgsearch extract` builds one from an
//! instance's spec on another machine, so both produce the same bytes for a picture.

use std::sync::Arc;

use super::category::{ServiceType, CATEGORY_OTHER};
use super::stage_timer::StageTimer;
use super::{EngineError, Result};
use crate::vision::{self, Extractor, PixelLimits, Region};

/// Keypoints kept per stored picture (catalogue shots: the product fills the picture).
pub const STORED_LOCAL_POINTS: usize = 400;

/// Subject regions reported in MultiRegion at most.
const MAX_SUBJECTS: usize = 3;

/// A picture's vector and subject, before any category vote of stored neighbours.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The extractor's vector (before any whitening).
    pub vector: Vec<f32>,
    /// Region the vector was taken from.
    pub region: Region,
    /// Further subject regions (main one first).
    pub multi_region: Vec<Region>,
    /// The category given, or decided by the picture alone (service types without
    /// categories, the model's clear ImageNet classes); `None`: stored neighbours decide.
    pub category_id: Option<u32>,
    /// Crop met a busy scene: the vector is the whole picture's, the box only a guess.
    pub scene: bool,
}

/// What a picture stores besides its record and vector, made from its pixels.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Extras {
    /// JPEG preview (thumbnails on).
    pub thumbnail: Option<Vec<u8>>,
    /// Stored form of its local features (instances that keep them).
    pub local_features: Option<Vec<u8>>,
}

/// An extractor with the settings that shape what a picture becomes.
#[derive(Clone)]
pub struct Analyser {
    extractor: Arc<dyn Extractor>,
    service: ServiceType,
    local_features: bool,
}

impl Analyser {
    /// An analyser for pictures of `service` with `extractor`, keeping local features or not.
    pub fn new(extractor: Arc<dyn Extractor>, service: ServiceType, local_features: bool) -> Self {
        Analyser {
            extractor,
            service,
            local_features,
        }
    }

    /// The extractor.
    pub fn extractor(&self) -> &Arc<dyn Extractor> {
        &self.extractor
    }

    /// Whether stored pictures keep local features.
    pub fn local_features(&self) -> bool {
        self.local_features
    }

    /// Checks a category given by the caller against the service type.
    pub fn check_category(&self, category: Option<u32>) -> Result<Option<u32>> {
        if !self.service.has_categories() {
            // Other service types use 88888888 whatever is asked (vendor behaviour).
            return Ok(category.map(|_| CATEGORY_OTHER));
        }
        match category {
            Some(c) if !self.service.categories().iter().any(|(id, _)| *id == c) => {
                Err(EngineError::InvalidCategory(c))
            }
            other => Ok(other),
        }
    }

    /// Decodes a picture within the service type's size limits.
    pub fn decode(&self, bytes: &[u8]) -> Result<vision::Picture> {
        let limits = PixelLimits {
            min_side: self.service.min_side(),
            ..PixelLimits::default()
        };
        let timer = StageTimer::start();
        let picture = vision::decode(bytes, &limits)?;
        timer.lap("decode");
        Ok(picture)
    }

    /// What a stored picture becomes: checks the category, decodes, analyses, and makes
    /// a preview of longest side `thumbnail_side` (0 = none) and the stored local
    /// features when kept.
    pub fn analyse_stored(
        &self,
        bytes: &[u8],
        crop: bool,
        region: Option<Region>,
        category: Option<u32>,
        thumbnail_side: u32,
    ) -> Result<(Analysis, Extras)> {
        let category = self.check_category(category)?;
        let picture = self.decode(bytes)?;
        let analysis = self.analyse_picture(&picture, crop, region, category)?;
        let timer = StageTimer::start();
        let thumbnail = vision::thumbnail(picture.rgb(), thumbnail_side);
        if thumbnail_side > 0 {
            timer.lap("thumbnail");
        }
        let local_features = self.local_features.then(|| {
            let timer = StageTimer::start();
            let features =
                vision::LocalFeatures::extract(picture.rgb(), STORED_LOCAL_POINTS).to_bytes();
            timer.lap("local_features");
            features
        });
        let extras = Extras {
            thumbnail,
            local_features,
        };
        Ok((analysis, extras))
    }

    /// Subject box, vector and (when the picture decides it) category of a decoded
    /// picture; `category` is already checked.
    pub fn analyse_picture(
        &self,
        picture: &vision::Picture,
        crop: bool,
        region: Option<Region>,
        category: Option<u32>,
    ) -> Result<Analysis> {
        self.analyse_picture_beside(picture, crop, region, category, |_, _| ())
            .map(|(analysis, ())| analysis)
    }

    /// [`Self::analyse_picture`], with `beside` given the subject regions found and
    /// whether Crop met a busy scene, and for a scene run beside the extraction on another
    /// core: a model runs one picture on one core, so a search's further views of a busy
    /// scene (`Instance::analyse_views`) would otherwise wait for it with a core idle. A
    /// network's run on a product shot has nothing beside it: it and then `beside` run on
    /// this thread.
    pub fn analyse_picture_beside<T: Send>(
        &self,
        picture: &vision::Picture,
        crop: bool,
        region: Option<Region>,
        category: Option<u32>,
        beside: impl FnOnce(&[Region], bool) -> T + Send,
    ) -> Result<(Analysis, T)> {
        let timer = StageTimer::start();
        let mut scene = false;
        let (region, multi_region) = match region {
            Some(r) => {
                r.validate_within(picture.width(), picture.height())?;
                (r, vec![r])
            }
            None if crop => {
                let found = vision::find_subjects(picture.rgb(), MAX_SUBJECTS);
                let regions = found.regions;
                let full = Region::full(picture.width(), picture.height());
                let main = regions.first().copied().unwrap_or(full);
                // In a busy scene the box is a guess: a wrong crop throws the product away,
                // the whole picture keeps it (GroceryStore val, built-in: P@1 0.348 cropped,
                // 0.547 whole). Searches still try the guess as a second view.
                if found.cluttered {
                    scene = true;
                    (full, regions)
                } else {
                    (main, regions)
                }
            }
            None => (Region::full(picture.width(), picture.height()), Vec::new()),
        };
        let timer = timer.lap("subject");
        let extract = || {
            self.extractor
                .extract_with_classes(picture.rgb(), Some(&region))
        };
        // A network run on a product shot has nothing beside it, so it stays on this thread:
        // as a rayon job it would hold one of the pool's threads for the whole run, and the
        // searches' scans, which run there, would queue behind it. The built-in extractor's
        // short run stays a pool job, as before: off the pool it showed no gain (AddImage
        // over HTTP 3-7 % slower in three pairs, within this machine's noise).
        let ((vector, classes), beside) = if !scene && self.extractor.runtime().is_some() {
            let extracted = extract();
            timer.lap("extract");
            (extracted, beside(&multi_region, scene))
        } else {
            rayon::join(
                || {
                    // A scene's further views run beside: one core each.
                    let extracted = if scene {
                        vision::sharing_cores(extract)
                    } else {
                        extract()
                    };
                    timer.lap("extract");
                    extracted
                },
                || beside(&multi_region, scene),
            )
        };
        let category_id = match category {
            Some(c) => Some(c),
            None if !self.service.has_categories() => Some(CATEGORY_OTHER),
            None => classes
                .as_deref()
                .and_then(crate::engine::imagenet::category_of),
        };
        let analysis = Analysis {
            vector,
            region,
            multi_region,
            category_id,
            scene,
        };
        Ok((analysis, beside))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{AddPicture, Attributes};
    use crate::vision::testkit::{jpeg_bytes, scene};
    use crate::vision::BuiltinExtractor;

    #[test]
    fn a_standalone_analyser_gives_the_bytes_an_instance_stores() {
        let (_dir, _engine, instance) = crate::engine::testkit::generic_instance("a");
        let picture = jpeg_bytes(&scene(7, 320, 240), 90);
        instance
            .add(AddPicture {
                product_id: "p".into(),
                pic_name: "n".into(),
                picture: picture.clone(),
                category_id: None,
                crop: true,
                region: None,
                attributes: Attributes::default(),
            })
            .unwrap();
        let (doc, _) = instance.stored("p", "n").unwrap();
        let stored = instance
            .store
            .vector(instance.meta.id, doc)
            .unwrap()
            .unwrap();
        let analyser = Analyser::new(
            Arc::new(BuiltinExtractor::new()),
            ServiceType::Generic,
            false,
        );
        let (analysis, extras) = analyser
            .analyse_stored(
                &picture,
                true,
                None,
                None,
                instance.settings().thumbnail_side,
            )
            .unwrap();
        assert_eq!(analysis.vector, stored);
        assert_eq!(analysis.category_id, Some(CATEGORY_OTHER));
        assert!(extras.thumbnail.is_some());
        assert_eq!(extras.thumbnail, instance.thumbnail("p", "n").unwrap());
        assert!(extras.local_features.is_none());
    }

    #[test]
    fn without_classes_a_product_category_is_left_to_the_neighbours() {
        let analyser = Analyser::new(
            Arc::new(BuiltinExtractor::new()),
            ServiceType::Product,
            true,
        );
        let picture = jpeg_bytes(&scene(3, 200, 200), 90);
        let (analysis, extras) = analyser
            .analyse_stored(&picture, false, None, None, 0)
            .unwrap();
        assert_eq!(analysis.category_id, None);
        assert!(extras.thumbnail.is_none() && extras.local_features.is_some());
        let given = analyser
            .analyse_stored(&picture, false, None, Some(0), 0)
            .unwrap();
        assert_eq!(given.0.category_id, Some(0));
        assert!(matches!(
            analyser.check_category(Some(12345)),
            Err(EngineError::InvalidCategory(12345))
        ));
    }
}
