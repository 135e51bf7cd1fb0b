//! A grouping region's silhouette as a candidate: whether its size and shape may be a
//! product's, its holes filled, its rank by contrast with its surroundings, and whether it
//! repeats a better one.

use super::pixels::{bin, delta_e, normalise};
use super::{
    BORDER_PENALTY, DUPLICATE_IOU, MAX_AREA, MAX_ASPECT, MIN_AREA, MIN_FILL, MIN_OUTLINE, RING,
    RING_BINS,
};

/// Whether a region with bounding box `b` on a `w` × `h` raster may be a product's
/// whatever its holes: its box not too elongated nor too small to hold
/// [`MIN_AREA`] of the picture. Settles most regions before their mask is drawn.
pub(super) fn plausible_box(b: &Bounds, (w, h): (usize, usize)) -> bool {
    let (bw, bh) = (b.x2 - b.x1, b.y2 - b.y1);
    let aspect = bw.max(bh) as f32 / bw.min(bh).max(1) as f32;
    let box_share = (bw * bh) as f32 / (w * h) as f32;
    aspect <= MAX_ASPECT && box_share >= MIN_AREA
}

/// A grouping region's silhouette (`mask`, its bounding box `b`) as a ranked candidate,
/// `None` when its size or shape is implausible for a product.
pub(super) fn candidate(
    mut mask: Vec<bool>,
    b: Bounds,
    steps: &[[f32; 2]],
    ring_bins: &[[u8; 3]],
    (w, h): (usize, usize),
) -> Option<Candidate> {
    if !plausible_box(&b, (w, h)) {
        return None;
    }
    fill_holes(&mut mask, w, &b);
    // Nothing of the mask lies outside its box.
    let area: usize = (b.y1..b.y2)
        .map(|y| {
            mask[y * w + b.x1..y * w + b.x2]
                .iter()
                .filter(|m| **m)
                .count()
        })
        .sum();
    let share = area as f32 / (w * h) as f32;
    let (bw, bh) = (b.x2 - b.x1, b.y2 - b.y1);
    let fill = area as f32 / (bw * bh).max(1) as f32;
    if !(MIN_AREA..=MAX_AREA).contains(&share) || fill < MIN_FILL {
        return None;
    }
    // A region that shades into its surroundings (a gradient's band, a shadow) is no
    // object.
    if outline_contrast(&mask, steps, w, h, &b) < MIN_OUTLINE {
        return None;
    }
    // A product rarely leaves the frame; a shelf or a floor often fills it.
    let touching = [b.x1 == 0, b.y1 == 0, b.x2 == w, b.y2 == h]
        .iter()
        .filter(|t| **t)
        .count() as f32;
    let score = surround_contrast(&mask, ring_bins, w, h, &b)
        * fill.sqrt()
        * (1.0 - BORDER_PENALTY * touching);
    Some(Candidate {
        score,
        area,
        mask,
        bounds: b,
    })
}

/// A proposal before ranking, on the working raster.
pub(super) struct Candidate {
    pub(super) score: f32,
    pub(super) area: usize,
    pub(super) mask: Vec<bool>,
    pub(super) bounds: Bounds,
}

impl Candidate {
    /// Whether the two silhouettes overlap by more than [`DUPLICATE_IOU`]. The shared
    /// pixels lie in the boxes' intersection: a small one settles it without a count.
    pub(super) fn repeats(&self, other: &Candidate, w: usize) -> bool {
        let inter = Bounds {
            x1: self.bounds.x1.max(other.bounds.x1),
            y1: self.bounds.y1.max(other.bounds.y1),
            x2: self.bounds.x2.min(other.bounds.x2),
            y2: self.bounds.y2.min(other.bounds.y2),
        };
        if inter.x1 >= inter.x2 || inter.y1 >= inter.y2 {
            return false;
        }
        let most = ((inter.x2 - inter.x1) * (inter.y2 - inter.y1)) as f32;
        let least_union = self.area.max(other.area) as f32;
        if most <= DUPLICATE_IOU * least_union {
            return false;
        }
        let mut shared = 0usize;
        for y in inter.y1..inter.y2 {
            let row = y * w;
            let (a, b) = (
                &self.mask[row + inter.x1..row + inter.x2],
                &other.mask[row + inter.x1..row + inter.x2],
            );
            shared += a.iter().zip(b).filter(|(p, q)| **p && **q).count();
        }
        let union = self.area + other.area - shared;
        shared as f32 > DUPLICATE_IOU * union as f32
    }
}

/// A box on the working raster (upper bounds exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Bounds {
    pub(super) x1: usize,
    pub(super) y1: usize,
    pub(super) x2: usize,
    pub(super) y2: usize,
}

/// Bounding box of a mask, `None` when empty.
#[cfg(test)]
pub(super) fn bounds(mask: &[bool], w: usize) -> Option<Bounds> {
    let mut b: Option<Bounds> = None;
    for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
        let (x, y) = (i % w, i / w);
        b = Some(match b {
            None => Bounds {
                x1: x,
                y1: y,
                x2: x + 1,
                y2: y + 1,
            },
            Some(b) => Bounds {
                x1: b.x1.min(x),
                y1: b.y1.min(y),
                x2: b.x2.max(x + 1),
                y2: b.y2.max(y + 1),
            },
        });
    }
    b
}

/// Marks every pixel of the box that is not connected (4-way, outside the mask) to the
/// box's edge: a logo or print that segmented apart belongs to the garment around it.
///
/// The free (unmasked) pixels are taken a run of a row at a time, runs of neighbouring
/// rows that share a column joined (union-find): the same 4-way components as a flood
/// fill from the edge, at a cost of the runs rather than of every free pixel (a
/// segmentation scores hundreds of candidate silhouettes, and the pixel flood fill
/// was a large part of its time).
pub(super) fn fill_holes(mask: &mut [bool], w: usize, b: &Bounds) {
    let (bw, bh) = (b.x2 - b.x1, b.y2 - b.y1);
    if bw == 0 || bh == 0 {
        return;
    }
    let line = |y: usize| (b.y1 + y) * w + b.x1;
    // Free runs, row by row: (row, first column, end column) within the box.
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    let mut row_first = Vec::with_capacity(bh + 1);
    for y in 0..bh {
        row_first.push(runs.len());
        let row = &mask[line(y)..][..bw];
        let mut x = 0;
        while x < bw {
            if row[x] {
                x += 1;
                continue;
            }
            let start = x;
            while x < bw && !row[x] {
                x += 1;
            }
            runs.push((y, start, x));
        }
    }
    row_first.push(runs.len());
    let mut parent: Vec<u32> = (0..runs.len() as u32).collect();
    fn root(parent: &mut [u32], mut i: u32) -> u32 {
        while parent[i as usize] != i {
            let p = parent[i as usize];
            parent[i as usize] = parent[p as usize];
            i = p;
        }
        i
    }
    for y in 1..bh {
        let (mut i, mut j) = (row_first[y - 1], row_first[y]);
        while i < row_first[y] && j < row_first[y + 1] {
            let ((_, s1, e1), (_, s2, e2)) = (runs[i], runs[j]);
            if s1 < e2 && s2 < e1 {
                let (ri, rj) = (root(&mut parent, i as u32), root(&mut parent, j as u32));
                parent[ri.max(rj) as usize] = ri.min(rj);
            }
            if e1 < e2 {
                i += 1;
            } else {
                j += 1;
            }
        }
    }
    // A component is outside when one of its runs touches the box's edge.
    let mut outside = vec![false; runs.len()];
    for (i, &(y, start, end)) in runs.iter().enumerate() {
        if y == 0 || y + 1 == bh || start == 0 || end == bw {
            let r = root(&mut parent, i as u32);
            outside[r as usize] = true;
        }
    }
    for (i, &(y, start, end)) in runs.iter().enumerate() {
        if !outside[root(&mut parent, i as u32) as usize] {
            let at = line(y);
            mask[at + start..at + end].fill(true);
        }
    }
}

/// Mean Lab distance across the mask's outline (each inside pixel of its box against
/// its 4-way outside neighbours): an object's edge is a step, a shading's is not.
/// `steps` holds each pixel's distances to its right and lower neighbours
/// ([`neighbour_steps`]): the same distances, added in the same order, as computing
/// each pair's here.
fn outline_contrast(mask: &[bool], steps: &[[f32; 2]], w: usize, h: usize, b: &Bounds) -> f32 {
    let mut sum = 0.0f32;
    let mut n = 0usize;
    for y in b.y1..b.y2 {
        for x in b.x1..b.x2 {
            let i = y * w + x;
            if !mask[i] {
                continue;
            }
            let mut pair = |j: usize, step: f32| {
                if !mask[j] {
                    sum += step;
                    n += 1;
                }
            };
            if x > 0 {
                pair(i - 1, steps[i - 1][0]);
            }
            if x + 1 < w {
                pair(i + 1, steps[i][0]);
            }
            if y > 0 {
                pair(i - w, steps[i - w][1]);
            }
            if y + 1 < h {
                pair(i + w, steps[i][1]);
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f32
    }
}

/// Each pixel's Lab distance to its right and to its lower neighbour (0 past the
/// raster's edge), once per picture: every candidate's outline sums some of them, and a
/// pixel lies on the outlines of many regions of the hierarchy. The distance is
/// symmetric to the bit (`a - b` is `-(b - a)` exactly), so a left or upper pair reads
/// its neighbour's entry.
pub(super) fn neighbour_steps(lab: &[[f32; 3]], w: usize, h: usize) -> Vec<[f32; 2]> {
    let mut steps = vec![[0.0f32; 2]; lab.len()];
    for (i, step) in steps.iter_mut().enumerate() {
        let (x, y) = (i % w, i / w);
        if x + 1 < w {
            step[0] = delta_e(&lab[i], &lab[i + 1]);
        }
        if y + 1 < h {
            step[1] = delta_e(&lab[i], &lab[i + w]);
        }
    }
    steps
}

/// How different the mask's colours are from those around it: one minus the
/// intersection of the Lab histograms of the mask and of the ring of its box grown by
/// [`RING`] (0: same colours, 1: none shared). A product stands apart from the shelf
/// around it; a piece of the shelf does not. `ring_bins` holds each pixel's bins
/// ([`ring_bins`]).
fn surround_contrast(mask: &[bool], ring_bins: &[[u8; 3]], w: usize, h: usize, b: &Bounds) -> f32 {
    let grow = |len: usize| ((len as f32 * RING).ceil() as usize).max(2);
    let (gx, gy) = (grow(b.x2 - b.x1), grow(b.y2 - b.y1));
    let (x1, y1) = (b.x1.saturating_sub(gx), b.y1.saturating_sub(gy));
    let (x2, y2) = ((b.x2 + gx).min(w), (b.y2 + gy).min(h));
    // Counts (around, then inside) picked by the mask rather than by a branch: whether
    // a pixel of the ring is the region's is a coin flip along its outline.
    let mut counts = [[0u32; 3 * RING_BINS]; 2];
    for y in y1..y2 {
        let row = y * w;
        for (&on, bins) in mask[row + x1..row + x2]
            .iter()
            .zip(&ring_bins[row + x1..row + x2])
        {
            let hist = &mut counts[usize::from(on)];
            for (c, &k) in bins.iter().enumerate() {
                hist[c * RING_BINS + usize::from(k)] += 1;
            }
        }
    }
    // Counts below 2^24: exact as floats.
    let [mut around, mut inside] = counts.map(|hist| hist.map(|n| n as f32));
    normalise(&mut inside);
    normalise(&mut around);
    let shared: f32 = inside.iter().zip(&around).map(|(p, q)| p.min(*q)).sum();
    1.0 - shared / 3.0
}

/// Each pixel's [`RING_BINS`] bin per Lab channel, once per picture: every candidate's
/// ring comparison counts them again, and a pixel lies in the rings of many regions of
/// the hierarchy.
pub(super) fn ring_bins(lab: &[[f32; 3]]) -> Vec<[u8; 3]> {
    lab.iter()
        .map(|p| {
            // RING_BINS is far below 256.
            [0, 1, 2].map(|c| bin(c, p[c], RING_BINS) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::pixels::delta_e;
    use super::*;

    /// [`outline_contrast`] as first written: each pair's distance computed in turn.
    fn outline_contrast_per_pair(
        mask: &[bool],
        lab: &[[f32; 3]],
        w: usize,
        h: usize,
        b: &Bounds,
    ) -> f32 {
        let mut sum = 0.0f32;
        let mut n = 0usize;
        for y in b.y1..b.y2 {
            for x in b.x1..b.x2 {
                let i = y * w + x;
                if !mask[i] {
                    continue;
                }
                let mut pair = |j: usize| {
                    if !mask[j] {
                        sum += delta_e(&lab[i], &lab[j]);
                        n += 1;
                    }
                };
                if x > 0 {
                    pair(i - 1);
                }
                if x + 1 < w {
                    pair(i + 1);
                }
                if y > 0 {
                    pair(i - w);
                }
                if y + 1 < h {
                    pair(i + w);
                }
            }
        }
        if n == 0 {
            0.0
        } else {
            sum / n as f32
        }
    }

    #[test]
    fn outline_steps_give_the_per_pair_contrast_bit_for_bit() {
        let mut rng = crate::vision::testkit::Rng::new(3);
        let mut next = move || rng.next();
        for (w, h) in [(1usize, 1usize), (5, 3), (24, 17), (64, 48)] {
            let lab: Vec<[f32; 3]> = (0..w * h)
                .map(|_| {
                    [
                        (next() % 10_000) as f32 / 100.0,
                        (next() % 16_000) as f32 / 100.0 - 80.0,
                        (next() % 16_000) as f32 / 100.0 - 80.0,
                    ]
                })
                .collect();
            let steps = neighbour_steps(&lab, w, h);
            for _ in 0..50 {
                // A random box (the whole raster among them) and a blob-ish mask in it.
                let (x1, y1) = ((next() % w as u64) as usize, (next() % h as u64) as usize);
                let x2 = x1 + 1 + (next() % (w - x1) as u64) as usize;
                let y2 = y1 + 1 + (next() % (h - y1) as u64) as usize;
                let b = Bounds { x1, y1, x2, y2 };
                let mut mask = vec![false; w * h];
                for y in y1..y2 {
                    for x in x1..x2 {
                        mask[y * w + x] = next() % 4 != 0;
                    }
                }
                let want = outline_contrast_per_pair(&mask, &lab, w, h, &b);
                let got = outline_contrast(&mask, &steps, w, h, &b);
                assert_eq!(got.to_bits(), want.to_bits(), "{w}x{h} {b:?}");
            }
        }
    }
}
