//! The scan modes (`serve --scan`): which rows searches scan, by name for the command line
//! and the config file.

/// Which rows searches scan (`serve --scan`; the command line parses it by name through
/// `FromStr`, so the index does not depend on the CLI's crate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanMode {
    /// The f32 rows, exactly.
    F32,
    /// An i8 copy (a quarter of the bytes), candidates re-ranked in f32.
    #[default]
    I8,
    /// An f16 copy (half the bytes), candidates re-ranked in f32.
    F16,
    /// A 1-bit copy (an eighth of the i8 bytes) whose shortlist is re-scored on an i8
    /// copy, then re-ranked in f32.
    Bits,
    /// A coarse partition of an i8 copy: the lists nearest the query are scanned, then
    /// re-ranked in f32 (approximate; an i8 copy below [`IVF_MIN_ROWS`](super::IVF_MIN_ROWS) rows).
    Ivf,
}

/// A scan mode name that is none of `f32`, `i8`, `f16`, `bits`, `ivf`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scan mode {0:?}: use f32, i8, f16, bits or ivf")]
pub struct UnknownScanMode(pub String);

impl std::str::FromStr for ScanMode {
    type Err = UnknownScanMode;

    fn from_str(name: &str) -> Result<Self, UnknownScanMode> {
        match name {
            "f32" => Ok(ScanMode::F32),
            "i8" => Ok(ScanMode::I8),
            "f16" => Ok(ScanMode::F16),
            "bits" => Ok(ScanMode::Bits),
            "ivf" => Ok(ScanMode::Ivf),
            other => Err(UnknownScanMode(other.to_string())),
        }
    }
}

impl std::fmt::Display for ScanMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl ScanMode {
    /// The modes' names, as the command line and the config file spell them.
    pub const NAMES: [&'static str; 5] = ["f32", "i8", "f16", "bits", "ivf"];

    /// The mode's name.
    pub fn name(self) -> &'static str {
        Self::NAMES[usize::from(self.code())]
    }

    /// The mode's number (the scan copy keeps it in an atomic).
    pub(super) fn code(self) -> u8 {
        match self {
            ScanMode::F32 => 0,
            ScanMode::I8 => 1,
            ScanMode::F16 => 2,
            ScanMode::Bits => 3,
            ScanMode::Ivf => 4,
        }
    }

    /// The mode of number `code` (f32 for an unknown one).
    pub(super) fn from_code(code: u8) -> Self {
        match code {
            1 => ScanMode::I8,
            2 => ScanMode::F16,
            3 => ScanMode::Bits,
            4 => ScanMode::Ivf,
            _ => ScanMode::F32,
        }
    }
}
