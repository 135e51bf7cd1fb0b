//! Rectangular regions of a picture, in the vendor's `x1,x2,y1,y2` notation.
//!
//! The Image Search API passes and returns subject boxes as a string of four
//! integers in the unusual order `x1,x2,y1,y2`, where `(x1, y1)` is the
//! upper-left corner and `(x2, y2)` the lower-right one. We read the lower
//! right corner as *exclusive* (one past the last column/row), like a Rust
//! range: `width = x2 - x1`, and the whole `W`x`H` picture is `0,W,0,H`. This
//! is the only reading under which the full-picture box the vendor itself
//! returns is valid, and it keeps width/height arithmetic free of `+1`s.

use std::fmt;

use crate::vision::error::{Result, VisionError};

/// A box inside a picture: columns `x1..x2`, rows `y1..y2` (upper bounds exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region {
    /// Left column, inclusive.
    pub x1: u32,
    /// Right column, exclusive.
    pub x2: u32,
    /// Top row, inclusive.
    pub y1: u32,
    /// Bottom row, exclusive.
    pub y2: u32,
}

impl Region {
    /// The region covering a whole `width`x`height` picture.
    #[must_use]
    pub fn full(width: u32, height: u32) -> Self {
        Self {
            x1: 0,
            x2: width,
            y1: 0,
            y2: height,
        }
    }

    /// Number of columns covered (0 for a degenerate box).
    #[must_use]
    pub fn width(&self) -> u32 {
        self.x2.saturating_sub(self.x1)
    }

    /// Number of rows covered (0 for a degenerate box).
    #[must_use]
    pub fn height(&self) -> u32 {
        self.y2.saturating_sub(self.y1)
    }

    /// Number of pixels covered.
    #[must_use]
    pub fn area(&self) -> u64 {
        u64::from(self.width()) * u64::from(self.height())
    }

    /// Parses the vendor string `"x1,x2,y1,y2"`, tolerating spaces around numbers.
    pub fn parse(text: &str) -> Result<Self> {
        let mut values = [0u32; 4];
        let mut count = 0usize;
        for (i, part) in text.split(',').enumerate() {
            let part = part.trim();
            let Some(slot) = values.get_mut(i) else {
                return Err(VisionError::InvalidRegion(format!(
                    "expected 4 comma-separated numbers, got more in {text:?}"
                )));
            };
            *slot = part.parse::<u32>().map_err(|_| {
                VisionError::InvalidRegion(format!("{:?} is not a non-negative integer", part))
            })?;
            count = i + 1;
        }
        if count != 4 {
            return Err(VisionError::InvalidRegion(format!(
                "expected 4 comma-separated numbers, got {count} in {text:?}"
            )));
        }
        let [x1, x2, y1, y2] = values;
        let region = Self { x1, x2, y1, y2 };
        region.check_ordered()?;
        Ok(region)
    }

    /// Checks that the box is non-empty and lies inside a `width`x`height` picture.
    pub fn validate_within(&self, width: u32, height: u32) -> Result<()> {
        self.check_ordered()?;
        if self.x2 > width {
            return Err(VisionError::InvalidRegion(format!(
                "x2={} is beyond the picture width {width}",
                self.x2
            )));
        }
        if self.y2 > height {
            return Err(VisionError::InvalidRegion(format!(
                "y2={} is beyond the picture height {height}",
                self.y2
            )));
        }
        Ok(())
    }

    /// Intersects with a `width`x`height` picture; `None` when nothing is left.
    ///
    /// Extraction cannot fail, so it uses this to tolerate boxes computed
    /// against a slightly different picture instead of refusing them.
    #[must_use]
    pub fn clamped(&self, width: u32, height: u32) -> Option<Self> {
        let r = Self {
            x1: self.x1.min(width),
            x2: self.x2.min(width),
            y1: self.y1.min(height),
            y2: self.y2.min(height),
        };
        (r.x1 < r.x2 && r.y1 < r.y2).then_some(r)
    }

    fn check_ordered(&self) -> Result<()> {
        if self.x1 >= self.x2 {
            return Err(VisionError::InvalidRegion(format!(
                "x1={} must be smaller than x2={}",
                self.x1, self.x2
            )));
        }
        if self.y1 >= self.y2 {
            return Err(VisionError::InvalidRegion(format!(
                "y1={} must be smaller than y2={}",
                self.y1, self.y2
            )));
        }
        Ok(())
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{},{}", self.x1, self.x2, self.y1, self.y2)
    }
}

/// Maps coordinate `v` of a raster `small` pixels long onto one `big` pixels long
/// (rounded up for a box's far edge, down for its near edge), clamped to `big`.
pub(crate) fn scale_coordinate(v: usize, small: usize, big: u32, round_up: bool) -> u32 {
    let (v, small, big) = (v as u64, small.max(1) as u64, u64::from(big));
    let scaled = if round_up {
        (v * big).div_ceil(small)
    } else {
        v * big / small
    };
    scaled.min(big) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(r: Result<Region>) -> String {
        match r {
            Err(VisionError::InvalidRegion(why)) => why,
            other => panic!("expected InvalidRegion, got {other:?}"),
        }
    }

    #[test]
    fn parses_vendor_order_and_whitespace() {
        let r = Region::parse(" 10, 200 ,\t30,400 ").unwrap();
        assert_eq!(
            r,
            Region {
                x1: 10,
                x2: 200,
                y1: 30,
                y2: 400
            }
        );
        assert_eq!(r.width(), 190);
        assert_eq!(r.height(), 370);
        assert_eq!(r.area(), 190 * 370);
    }

    #[test]
    fn display_round_trips() {
        let r = Region::parse("1,2,3,4").unwrap();
        assert_eq!(r.to_string(), "1,2,3,4");
        assert_eq!(Region::parse(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn rejects_malformed_strings_with_reasons() {
        assert!(reason(Region::parse("1,2,3")).contains("got 3"));
        assert!(reason(Region::parse("1,2,3,4,5")).contains("more"));
        assert!(reason(Region::parse("1,2,x,4")).contains("\"x\""));
        assert!(reason(Region::parse("-1,2,3,4")).contains("-1"));
        assert!(reason(Region::parse("")).contains("not a non-negative integer"));
        assert!(reason(Region::parse("1.5,2,3,4")).contains("1.5"));
        assert!(reason(Region::parse("99999999999,2,3,4")).contains("99999999999"));
    }

    #[test]
    fn rejects_inverted_or_empty_boxes() {
        assert!(reason(Region::parse("5,5,0,10")).contains("x1=5"));
        assert!(reason(Region::parse("6,5,0,10")).contains("x1=6"));
        assert!(reason(Region::parse("0,10,7,7")).contains("y1=7"));
    }

    #[test]
    fn full_picture_box_is_valid() {
        let r = Region::parse("0,640,0,480").unwrap();
        assert_eq!(r, Region::full(640, 480));
        assert!(r.validate_within(640, 480).is_ok());
        assert_eq!(r.width(), 640);
    }

    #[test]
    fn boxes_beyond_the_picture_are_refused() {
        let r = Region::parse("0,641,0,480").unwrap();
        assert!(reason(r.validate_within(640, 480).map(|()| r)).contains("width 640"));
        let r = Region::parse("0,640,0,481").unwrap();
        assert!(reason(r.validate_within(640, 480).map(|()| r)).contains("height 480"));
        let degenerate = Region {
            x1: 3,
            x2: 1,
            y1: 0,
            y2: 5,
        };
        assert!(degenerate.validate_within(10, 10).is_err());
        assert_eq!(degenerate.width(), 0);
    }

    #[test]
    fn clamping_keeps_the_overlap_only() {
        let r = Region {
            x1: 50,
            x2: 500,
            y1: 10,
            y2: 20,
        };
        assert_eq!(
            r.clamped(100, 100),
            Some(Region {
                x1: 50,
                x2: 100,
                y1: 10,
                y2: 20
            })
        );
        assert_eq!(r.clamped(40, 100), None);
    }
}
