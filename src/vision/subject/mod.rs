//! Subject: where the product is in a picture (the vendor's `Crop=true`).
//!
//! `detect.rs` finds the main product box by background subtraction, `segment/`
//! proposes several candidate boxes for cluttered scenes, and `mask.rs` holds the binary
//! morphology and connected components both use. Depends only on `picture/` (regions and
//! resampling), never on `extract/`: finding a box does not need a feature model.

pub(crate) mod detect;
pub(crate) mod mask;
pub(crate) mod segment;
