//! Typed failures of the vision layer.
//!
//! Every variant maps onto one of the vendor's documented picture errors
//! (size, format, pixel range, orientation, region), so the API layer can turn
//! it into the matching error code without parsing strings. Messages are
//! written for the person who sent the picture: each one says what to change.

use thiserror::Error;

/// Why a picture or region was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VisionError {
    /// The encoded picture is bigger than the accepted byte budget.
    #[error("picture is {bytes} bytes, over the {max}-byte limit; send a smaller or more compressed file")]
    TooLarge {
        /// Size of the encoded picture that was received.
        bytes: usize,
        /// Largest accepted encoded size.
        max: usize,
    },

    /// The bytes are not one of the accepted container formats.
    #[error("picture format is not supported; send PNG, JPEG, BMP, GIF, WebP, TIFF or PPM/PNM")]
    UnsupportedFormat,

    /// A side of the picture lies outside the accepted pixel range.
    #[error("picture is {width}x{height} pixels; each side must be between {min} and {max} pixels, resize it")]
    UnsupportedPixels {
        /// Width declared by the picture header.
        width: u32,
        /// Height declared by the picture header.
        height: u32,
        /// Smallest accepted side.
        min: u32,
        /// Largest accepted side.
        max: u32,
    },

    /// The picture carries an EXIF orientation that asks viewers to rotate or flip it.
    #[error("picture has EXIF orientation {orientation}; rotate the pixels upright and save it with orientation 1 (or without the tag)")]
    IncorrectOrientation {
        /// The EXIF orientation value found (1..=8).
        orientation: u8,
    },

    /// The header or pixel data cannot be decoded.
    #[error("picture data cannot be decoded ({0}); re-encode the file and send it again")]
    Corrupt(String),

    /// A region string is malformed or does not fit inside the picture.
    #[error("invalid region: {0}; use \"x1,x2,y1,y2\" with x1<x2<=width and y1<y2<=height")]
    InvalidRegion(String),
}

/// Why a model file cannot serve an instance.
///
/// Kept apart from [`VisionError`]: these are operator problems found when an
/// instance is created or opened, not faults in a caller's picture.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    /// The file cannot be read.
    #[error("model {path} cannot be read ({reason}); put the file back or recreate the instance")]
    Missing {
        /// Model path.
        path: std::path::PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The file is not the one the instance was created with.
    #[error("model {path} has changed since the instance was created (SHA-256 {found}, recorded {recorded}); its vectors would not compare with the stored ones: restore the original file or recreate the instance")]
    Changed {
        /// Model path.
        path: std::path::PathBuf,
        /// SHA-256 recorded at creation.
        recorded: String,
        /// SHA-256 of the file now.
        found: String,
    },
    /// The model's embedding has another length than the instance's vectors.
    #[error("model {path} gives {found}-dimensional embeddings, the instance holds {recorded}-dimensional ones")]
    Dimension {
        /// Model path.
        path: std::path::PathBuf,
        /// Dimension recorded at creation.
        recorded: usize,
        /// Dimension the file gives.
        found: usize,
    },
    /// The file is not a usable ONNX picture model.
    #[error("model {path} cannot be used: {reason}")]
    Invalid {
        /// Model path.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// onnxruntime was asked for (`--model-runtime ort`) and cannot run the model.
    #[error("model {path} cannot run on onnxruntime: {reason}")]
    Runtime {
        /// Model path.
        path: std::path::PathBuf,
        /// Why (library missing or not loadable, model refused).
        reason: String,
    },
    /// The model settings stored with the instance cannot be read.
    #[error("the model settings stored with the instance are damaged: {0}")]
    BadSpec(String),
}

/// Result alias for the vision layer.
pub type Result<T> = std::result::Result<T, VisionError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_fix() {
        let e = VisionError::TooLarge {
            bytes: 5_000_000,
            max: 4_194_304,
        };
        let msg = e.to_string();
        assert!(msg.contains("5000000") && msg.contains("4194304"));
        assert!(msg.contains("smaller"));

        let e = VisionError::UnsupportedPixels {
            width: 50,
            height: 60,
            min: 100,
            max: 4096,
        };
        let msg = e.to_string();
        assert!(msg.contains("50x60") && msg.contains("100") && msg.contains("4096"));

        let e = VisionError::IncorrectOrientation { orientation: 6 };
        assert!(e.to_string().contains("orientation 6"));

        assert!(VisionError::UnsupportedFormat.to_string().contains("JPEG"));
        assert!(VisionError::Corrupt("eof".into())
            .to_string()
            .contains("eof"));
        assert!(VisionError::InvalidRegion("x1 >= x2".into())
            .to_string()
            .contains("x1 >= x2"));
    }

    #[test]
    fn errors_compare_by_value() {
        assert_eq!(
            VisionError::IncorrectOrientation { orientation: 3 },
            VisionError::IncorrectOrientation { orientation: 3 }
        );
        assert_ne!(
            VisionError::UnsupportedFormat,
            VisionError::Corrupt(String::new())
        );
    }
}
