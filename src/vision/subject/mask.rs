//! Binary-mask operations for subject detection: morphology and blobs.
//!
//! A thresholded foreground mask is noisy: JPEG ringing leaves specks next to
//! strong edges, and one object can split where its colour touches the
//! background's. Opening (erode, then dilate) deletes specks smaller than the
//! 3x3 structuring element; closing (dilate, then erode) bridges narrow gaps.
//! Connected components then turn the mask into candidate subjects.
//!
//! Masks are row-major `Vec<bool>` with explicit width and height. Pixels
//! beyond the edge count as foreground for erosion (so an object cut by the
//! frame is not eaten from that side) and as background for dilation. Blobs
//! are found with an explicit stack rather than recursion, so a mask-sized
//! blob cannot overflow the call stack.

/// One 3x3 morphological pass; `outside` is assumed beyond the edges.
///
/// The 3x3 square is separable, so a row pass then a column pass of 3-wide
/// max (dilate) or min (erode) gives the same result at a third of the cost.
pub(crate) fn morph(mask: &[bool], w: usize, h: usize, dilate: bool) -> Vec<bool> {
    if w == 0 || h == 0 || mask.len() != w * h {
        return mask.to_vec();
    }
    if dilate {
        morph_with(mask, w, |a, b, c| a | b | c, false)
    } else {
        // Erosion must not eat objects touching the border.
        morph_with(mask, w, |a, b, c| a & b & c, true)
    }
}

/// [`morph`] with its 3-wide `combine` (non-short-circuit, so the pixels of a row are
/// combined several at a time): the edge pixels with `outside`, every other one from
/// plain slices without a bounds test per neighbour.
#[inline(always)]
fn morph_with(
    mask: &[bool],
    w: usize,
    combine: impl Fn(bool, bool, bool) -> bool,
    outside: bool,
) -> Vec<bool> {
    let mut rows = vec![false; mask.len()];
    for (src, dst) in mask.chunks_exact(w).zip(rows.chunks_exact_mut(w)) {
        if w == 1 {
            dst[0] = combine(outside, src[0], outside);
            continue;
        }
        dst[0] = combine(outside, src[0], src[1]);
        for ((d, l), (m, r)) in dst[1..w - 1]
            .iter_mut()
            .zip(&src[..w - 2])
            .zip(src[1..w - 1].iter().zip(&src[2..]))
        {
            *d = combine(*l, *m, *r);
        }
        dst[w - 1] = combine(src[w - 2], src[w - 1], outside);
    }
    let mut out = vec![false; mask.len()];
    let lines: Vec<&[bool]> = rows.chunks_exact(w).collect();
    for (y, dst) in out.chunks_exact_mut(w).enumerate() {
        let here = lines[y];
        match (y.checked_sub(1).map(|u| lines[u]), lines.get(y + 1)) {
            (Some(up), Some(down)) => {
                for ((d, u), (m, n)) in dst.iter_mut().zip(up).zip(here.iter().zip(*down)) {
                    *d = combine(*u, *m, *n);
                }
            }
            (up, down) => {
                for (x, d) in dst.iter_mut().enumerate() {
                    let u = up.map_or(outside, |r| r[x]);
                    let n = down.map_or(outside, |r| r[x]);
                    *d = combine(u, here[x], n);
                }
            }
        }
    }
    out
}

/// Erode then dilate: removes specks smaller than 3x3.
pub(crate) fn open(mask: &mut Vec<bool>, w: usize, h: usize) {
    *mask = morph(&morph(mask, w, h, false), w, h, true);
}

/// Dilate then erode `passes` times: bridges gaps up to `2*passes` pixels.
pub(crate) fn close(mask: &mut Vec<bool>, w: usize, h: usize, passes: usize) {
    for _ in 0..passes {
        *mask = morph(mask, w, h, true);
    }
    for _ in 0..passes {
        *mask = morph(mask, w, h, false);
    }
}

/// A connected foreground blob on the working raster (box upper bounds exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Component {
    /// Pixels in the blob.
    pub(crate) area: usize,
    /// Left column, inclusive.
    pub(crate) x1: usize,
    /// Right column, exclusive.
    pub(crate) x2: usize,
    /// Top row, inclusive.
    pub(crate) y1: usize,
    /// Bottom row, exclusive.
    pub(crate) y2: usize,
}

/// 8-connected components, largest first (ties keep scan order).
pub(crate) fn components(mask: &[bool], w: usize, h: usize) -> Vec<Component> {
    if w == 0 || h == 0 || mask.len() != w * h {
        return Vec::new();
    }
    let mut seen = vec![false; mask.len()];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask.get(start).copied().unwrap_or(false) || seen.get(start).copied().unwrap_or(true) {
            continue;
        }
        let (sx, sy) = (start % w, start / w);
        let mut c = Component {
            area: 0,
            x1: sx,
            x2: sx + 1,
            y1: sy,
            y2: sy + 1,
        };
        seen[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            c.area += 1;
            c.x1 = c.x1.min(x);
            c.x2 = c.x2.max(x + 1);
            c.y1 = c.y1.min(y);
            c.y2 = c.y2.max(y + 1);
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if mask.get(j).copied().unwrap_or(false)
                        && !seen.get(j).copied().unwrap_or(true)
                    {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        out.push(c);
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.area));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_rows(rows: &[&str]) -> (Vec<bool>, usize, usize) {
        let w = rows.first().map_or(0, |r| r.len());
        let bits = rows
            .iter()
            .flat_map(|r| r.chars().map(|c| c == '#'))
            .collect();
        (bits, w, rows.len())
    }

    fn to_rows(mask: &[bool], w: usize) -> Vec<String> {
        mask.chunks(w)
            .map(|r| r.iter().map(|b| if *b { '#' } else { '.' }).collect())
            .collect()
    }

    /// [`morph`] as first written: each pixel the min or max of its 3x3 square, with
    /// `outside` beyond the edges.
    fn morph_per_pixel(mask: &[bool], w: usize, h: usize, dilate: bool) -> Vec<bool> {
        let outside = !dilate;
        let at = |x: isize, y: isize| {
            if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
                outside
            } else {
                mask[y as usize * w + x as usize]
            }
        };
        let mut out = Vec::with_capacity(w * h);
        for y in 0..h as isize {
            for x in 0..w as isize {
                let square = (-1..=1).flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)));
                let mut values = square.map(|(dx, dy)| at(x + dx, y + dy));
                out.push(if dilate {
                    values.any(|v| v)
                } else {
                    values.all(|v| v)
                });
            }
        }
        out
    }

    #[test]
    fn morph_is_the_per_pixel_square_at_every_size() {
        let mut seed = 12345u64;
        for (w, h) in [(1, 1), (1, 5), (5, 1), (2, 2), (3, 7), (17, 9), (64, 40)] {
            for density in [2, 5, 8] {
                let mask: Vec<bool> = (0..w * h)
                    .map(|_| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        (seed >> 33) % 10 < density
                    })
                    .collect();
                for dilate in [false, true] {
                    assert_eq!(
                        morph(&mask, w, h, dilate),
                        morph_per_pixel(&mask, w, h, dilate),
                        "{w}x{h} density {density} dilate {dilate}"
                    );
                }
            }
        }
    }

    #[test]
    fn opening_removes_specks_but_keeps_blocks() {
        let (mut m, w, h) = from_rows(&[
            "#.......", "........", "...###..", "...###..", "...###..", "........",
        ]);
        open(&mut m, w, h);
        assert_eq!(
            to_rows(&m, w),
            ["........", "........", "...###..", "...###..", "...###..", "........"]
        );
    }

    #[test]
    fn closing_bridges_a_narrow_gap() {
        let (mut m, w, h) = from_rows(&[
            "..........",
            "..........",
            "..##.##...",
            "..##.##...",
            "..........",
            "..........",
        ]);
        close(&mut m, w, h, 1);
        assert_eq!(
            to_rows(&m, w),
            [
                "..........",
                "..........",
                "..#####...",
                "..#####...",
                "..........",
                "..........",
            ]
        );
    }

    #[test]
    fn objects_touching_the_frame_survive_erosion() {
        let (m, w, h) = from_rows(&["###.", "###.", "###."]);
        let eroded = morph(&m, w, h, false);
        assert_eq!(to_rows(&eroded, w), ["##..", "##..", "##.."]);
    }

    #[test]
    fn degenerate_masks_pass_through() {
        assert!(morph(&[], 0, 0, true).is_empty());
        assert_eq!(morph(&[true, false], 5, 5, true), vec![true, false]);
        assert!(components(&[], 0, 0).is_empty());
        assert!(components(&[true, true], 2, 0).is_empty());
    }

    #[test]
    fn components_are_eight_connected_and_sorted_by_area() {
        let (m, w, h) = from_rows(&["#...", ".#..", "...#", "..##"]);
        let comps = components(&m, w, h);
        assert_eq!(comps.len(), 2);
        assert_eq!(
            comps[0],
            Component {
                area: 3,
                x1: 2,
                x2: 4,
                y1: 2,
                y2: 4
            }
        );
        assert_eq!(
            comps[1],
            Component {
                area: 2,
                x1: 0,
                x2: 2,
                y1: 0,
                y2: 2
            }
        );
    }

    #[test]
    fn a_mask_filling_blob_does_not_recurse() {
        let m = vec![true; 512 * 512];
        let comps = components(&m, 512, 512);
        assert_eq!(
            comps,
            vec![Component {
                area: 512 * 512,
                x1: 0,
                x2: 512,
                y1: 0,
                y2: 512
            }]
        );
    }
}
