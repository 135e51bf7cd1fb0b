//! Local features for copy detection: ORB-style keypoints with binary descriptors, and
//! geometric verification of two pictures' features.
//!
//! A global vector summarises a whole picture, so a product pasted small on a busy scene,
//! overlaid with text or cropped scores low against its catalogue shot. Local features
//! find the same corners in both pictures whatever the scale, rotation and surroundings,
//! and a similarity transform that maps many of them onto each other is strong evidence
//! of a copy. [`LocalFeatures::extract`] finds them (`keypoints.rs`), [`verify`] counts
//! the matches one similarity explains (`matching.rs`); [`LocalFeatures::to_bytes`] is
//! the stored form. Nothing here knows about storage or ranking.

mod brief;
mod fast;
mod keypoints;
mod matching;
mod pyramid;
mod smoothing;

pub use matching::{verify, Verification};

/// Bytes one keypoint takes in [`LocalFeatures::to_bytes`]: x, y as u16 eighths of a
/// pixel and the 256-bit descriptor.
pub const LOCAL_POINT_BYTES: usize = 4 + 32;
/// Format version byte of [`LocalFeatures::to_bytes`].
const FORMAT_VERSION: u8 = 1;
/// Fixed-point factor of the stored coordinates.
const COORD_SCALE: f32 = 8.0;

/// The keypoints of one picture: positions in the working frame (the picture scaled so
/// its longest side is at most [`keypoints::WORK_SIDE`]) and their descriptors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalFeatures {
    /// Keypoint positions (x, y), working-frame pixels.
    pub(crate) points: Vec<[f32; 2]>,
    /// Rotated BRIEF descriptors, one per point.
    pub(crate) descriptors: Vec<[u64; 4]>,
    /// Longest side of the working frame (sets the verification tolerance).
    pub(crate) side: f32,
}

/// What a picture's keypoints are chosen from, whatever their number: its grey pyramid,
/// every level's corners by response and the smoothing the descriptors read. A search
/// that tries a few keypoints first and more when they do not suffice makes these once.
pub struct Keypoints(keypoints::Pyramid);

impl Keypoints {
    /// At most `max_points` keypoints of the picture: exactly
    /// `LocalFeatures::extract(picture, max_points)`.
    pub fn features(&self, max_points: usize) -> LocalFeatures {
        self.0.features(max_points)
    }
}

impl LocalFeatures {
    /// Finds at most `max_points` keypoints of an RGB picture, spread over it.
    pub fn extract(rgb: &image::RgbImage, max_points: usize) -> Self {
        keypoints::extract(rgb, max_points)
    }

    /// [`Self::extract`], and the picture's [`Keypoints`], from which more of its keypoints
    /// cost only their own descriptors.
    pub fn extract_keeping(rgb: &image::RgbImage, max_points: usize) -> (Self, Keypoints) {
        let (features, pyramid) = keypoints::extract_keeping(rgb, max_points);
        (features, Keypoints(pyramid))
    }

    /// Number of keypoints.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no keypoint was found (a blank picture).
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The stored form: version, count, side, then x, y (u16 eighths of a pixel) and the
    /// descriptor per keypoint, little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + self.len() * LOCAL_POINT_BYTES);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&(self.len() as u16).to_le_bytes());
        out.extend_from_slice(&(self.side.round() as u16).to_le_bytes());
        for (p, d) in self.points.iter().zip(&self.descriptors) {
            for c in p {
                let fixed = (c * COORD_SCALE).round().clamp(0.0, f32::from(u16::MAX));
                out.extend_from_slice(&(fixed as u16).to_le_bytes());
            }
            for word in d {
                out.extend_from_slice(&word.to_le_bytes());
            }
        }
        out
    }

    /// Reads [`Self::to_bytes`]; `None` when the bytes are not of this format.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (&version, rest) = bytes.split_first()?;
        if version != FORMAT_VERSION || rest.len() < 4 {
            return None;
        }
        let count = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let side = f32::from(u16::from_le_bytes([rest[2], rest[3]]));
        let body = &rest[4..];
        if body.len() != count * LOCAL_POINT_BYTES {
            return None;
        }
        let mut features = LocalFeatures {
            points: Vec::with_capacity(count),
            descriptors: Vec::with_capacity(count),
            side,
        };
        for chunk in body.chunks_exact(LOCAL_POINT_BYTES) {
            let u16_at = |i: usize| f32::from(u16::from_le_bytes([chunk[i], chunk[i + 1]]));
            features
                .points
                .push([u16_at(0) / COORD_SCALE, u16_at(2) / COORD_SCALE]);
            let mut d = [0u64; 4];
            for (w, word) in d.iter_mut().enumerate() {
                let at = 4 + w * 8;
                *word = u64::from_le_bytes(chunk[at..at + 8].try_into().ok()?);
            }
            features.descriptors.push(d);
        }
        Some(features)
    }
}

#[cfg(test)]
mod tests;
