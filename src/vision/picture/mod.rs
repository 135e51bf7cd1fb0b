//! Picture: untrusted bytes to checked, upright RGB pixels, and the pixel geometry every
//! later stage shares.
//!
//! `header.rs` and `validate.rs` gate the bytes (size, format, declared dimensions,
//! orientation) before `decode.rs` pays for a full decode, into a pixel buffer
//! `buffers.rs` kept from an earlier picture; `region.rs` is the box callers
//! and detectors talk in, `resample.rs` the area-averaging grid the detectors and
//! extractors work on, `thumbnail.rs` the stored preview, `exposure.rs` the undoing of a
//! dimmed or tinted plain background, `tone.rs` whether a picture is a stored preview
//! through a tone curve, `silhouette.rs` how alike a scene's silhouette and a preview's
//! product are. This is the bottom of `vision`: it imports nothing from
//! `subject/`, `extract/` or `local/`, so they can all build on it.

pub(crate) mod buffers;
pub(crate) mod decode;
pub(crate) mod exposure;
pub(crate) mod header;
pub(crate) mod region;
pub(crate) mod resample;
pub(crate) mod silhouette;
pub(crate) mod thumbnail;
pub(crate) mod tone;
pub(crate) mod validate;
