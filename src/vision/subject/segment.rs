//! Object proposals for busy scenes: where a product may stand, and its silhouette.
//!
//! A product photographed in a scene (a cardigan on a shop shelf) does not look like its
//! catalogue shot (the same cardigan on white) through any box: every box around it
//! still holds shelf pixels where the catalogue holds white. A silhouette fixes that: the
//! product's pixels composited on white ([`Proposal::composite`]) look like a catalogue
//! shot again. Proposals come from selective search (Uijlings et al. 2013):
//!
//! 1. downscale (longest side 192) and blur lightly, convert to CIE Lab (distances there
//!    roughly follow perceived colour differences);
//! 2. Felzenszwalb–Huttenlocher graph segmentation into small uniform regions, at two
//!    scales (a plain garment comes out as one region at the coarse one, a printed one
//!    as many);
//! 3. hierarchical grouping: repeatedly merge the two most similar neighbouring regions
//!    (colour and gradient histograms, small first, filling their joint box), so a
//!    patterned garment becomes one region at some step; every region of the hierarchy
//!    is a candidate;
//! 4. keep candidates of plausible product size and shape (3–60 % of the picture), fill
//!    their holes, rank them by how sharply they stand out from what surrounds them (a
//!    product pasted or placed in front of a shelf has a crisp outline all round), and
//!    drop those that repeat a better one.
//!
//! Deterministic (ordered work only), a few ms for a 512-pixel picture.

use image::{Rgb, RgbImage};

use crate::vision::picture::region::Region;
use crate::vision::picture::resample::{area_resize, fit_longest, Raster};

/// Longest side of the working raster.
const WORK_LONGEST: usize = 192;
/// Felzenszwalb–Huttenlocher scale parameters (larger: bigger regions), in Lab ΔE.
const FH_SCALES: [f32; 3] = [40.0, 100.0, 250.0];
/// Regions under this many working pixels are merged into a neighbour.
const MIN_SEGMENT: usize = 24;
/// A proposal covers at least this share of the picture...
const MIN_AREA: f32 = 0.03;
/// ...and at most this share.
const MAX_AREA: f32 = 0.60;
/// Its box is at most this much longer than wide (or wider than long).
const MAX_ASPECT: f32 = 4.0;
/// It fills at least this share of its box (a product is one compact blob).
const MIN_FILL: f32 = 0.3;
/// Two proposals whose masks overlap by more than this IoU are one.
const DUPLICATE_IOU: f32 = 0.8;
/// Bins per Lab channel of the colour histograms.
const COLOUR_BINS: usize = 25;
/// Orientation bins per Lab channel of the gradient histograms.
const TEXTURE_BINS: usize = 8;
/// The ring a proposal's colours are compared with: its box grown by this fraction of
/// its sides.
const RING: f32 = 0.15;
/// Least mean Lab ΔE across a proposal's outline (between neighbouring working pixels
/// of the blurred raster; JPEG noise and smooth shading stay near 1–2).
const MIN_OUTLINE: f32 = 3.0;
/// Score lost per side of the picture a proposal's box touches.
const BORDER_PENALTY: f32 = 0.2;
/// Bins per Lab channel of the ring comparison (coarse: shading should not count).
const RING_BINS: usize = 12;
/// White margin around a composite, as a fraction of the box's sides (catalogue shots
/// leave some white around the product).
const COMPOSITE_PAD: f32 = 0.06;

/// A candidate object: its box in the picture's pixels and its silhouette.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// Bounding box of the silhouette, in the picture's pixels.
    pub region: Region,
    /// Rank: how much its colours differ from those around it, times how compact it
    /// is, less for each side of the picture it touches; proposals come best first.
    pub score: f32,
    /// Silhouette on the working raster (`work.0` × `work.1`, row-major).
    mask: Vec<bool>,
    /// Working raster size.
    work: (usize, usize),
    /// Picture size.
    size: (u32, u32),
}

impl Proposal {
    /// Share of the picture the silhouette covers.
    #[must_use]
    pub fn area_share(&self) -> f32 {
        let on = self.mask.iter().filter(|m| **m).count();
        on as f32 / self.mask.len().max(1) as f32
    }

    /// Whether the silhouette covers the picture's pixel `(x, y)`.
    #[must_use]
    pub fn covers(&self, x: u32, y: u32) -> bool {
        self.alpha(x, y) >= 0.5
    }

    /// Coverage 0..1 of the picture's pixel `(x, y)`: the working mask, bilinearly
    /// upsampled (soft edges instead of working-pixel steps).
    fn alpha(&self, x: u32, y: u32) -> f32 {
        let (sw, sh) = self.work;
        let (w, h) = self.size;
        if sw == 0 || sh == 0 || w == 0 || h == 0 {
            return 0.0;
        }
        let fx = ((x as f32 + 0.5) * sw as f32 / w as f32 - 0.5).clamp(0.0, (sw - 1) as f32);
        let fy = ((y as f32 + 0.5) * sh as f32 / h as f32 - 0.5).clamp(0.0, (sh - 1) as f32);
        let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(sw - 1), (y0 + 1).min(sh - 1));
        let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
        let m = |x: usize, y: usize| f32::from(u8::from(self.mask[y * sw + x]));
        let top = m(x0, y0) * (1.0 - tx) + m(x1, y0) * tx;
        let bottom = m(x0, y1) * (1.0 - tx) + m(x1, y1) * tx;
        top * (1.0 - ty) + bottom * ty
    }

    /// The silhouette's pixels of `rgb` (the picture it was proposed on) on white: its
    /// box plus a white margin, every pixel outside the silhouette white. A product
    /// in a scene then looks like its catalogue shot.
    #[must_use]
    pub fn composite(&self, rgb: &RgbImage) -> RgbImage {
        let r = self.region;
        let pad = |len: u32| (len as f32 * COMPOSITE_PAD).round() as u32;
        let (px, py) = (pad(r.width()), pad(r.height()));
        let (ow, oh) = (r.width() + 2 * px, r.height() + 2 * py);
        RgbImage::from_fn(ow.max(1), oh.max(1), |ox, oy| {
            let (x, y) = ((r.x1 + ox).checked_sub(px), (r.y1 + oy).checked_sub(py));
            let (Some(x), Some(y)) = (x, y) else {
                return Rgb([255, 255, 255]);
            };
            if x >= r.x2 || y >= r.y2 || x >= rgb.width() || y >= rgb.height() {
                return Rgb([255, 255, 255]);
            }
            let a = self.alpha(x, y);
            let p = rgb.get_pixel(x, y);
            let mix = |c: u8| (f32::from(c) * a + 255.0 * (1.0 - a)).round() as u8;
            Rgb([mix(p[0]), mix(p[1]), mix(p[2])])
        })
    }
}

/// Up to `max` object proposals of a (busy) picture, best first.
#[must_use]
pub fn propose(rgb: &RgbImage, max: usize) -> Vec<Proposal> {
    if rgb.width() < 8 || rgb.height() < 8 || max == 0 {
        return Vec::new();
    }
    let (sw, sh) = fit_longest(rgb.width(), rgb.height(), WORK_LONGEST);
    let raster = area_resize(rgb, None, sw, sh);
    let lab = to_lab(&blur(&raster));
    let grads = gradients(&lab, sw, sh);
    let total = sw * sh;
    let mut scored: Vec<Candidate> = Vec::new();
    for k in FH_SCALES {
        let labels = felzenszwalb(&lab, sw, sh, k);
        let mut leaf_pixels: Vec<Vec<usize>> = Vec::new();
        for (i, l) in labels.iter().enumerate() {
            let l = *l as usize;
            if l >= leaf_pixels.len() {
                leaf_pixels.resize_with(l + 1, Vec::new);
            }
            leaf_pixels[l].push(i);
        }
        for members in group(&labels, &lab, &grads, sw, sh) {
            let mut mask = vec![false; total];
            for m in members {
                for &p in &leaf_pixels[m as usize] {
                    mask[p] = true;
                }
            }
            scored.extend(candidate(mask, &lab, (sw, sh)));
        }
    }
    // Best first; ties (and exact repeats) keep a fixed order.
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.bounds.cmp(&b.bounds))
    });
    let mut kept: Vec<Candidate> = Vec::new();
    for cand in scored {
        if kept.len() >= max {
            break;
        }
        if kept.iter().all(|k| !k.repeats(&cand, sw)) {
            kept.push(cand);
        }
    }
    let size = (rgb.width(), rgb.height());
    kept.into_iter()
        .map(|c| Proposal {
            region: scale_back(&c.bounds, (sw, sh), size),
            score: c.score,
            mask: c.mask,
            work: (sw, sh),
            size,
        })
        .collect()
}

/// A grouping region's silhouette as a ranked candidate, `None` when its size or shape
/// is implausible for a product.
fn candidate(mut mask: Vec<bool>, lab: &[[f32; 3]], (w, h): (usize, usize)) -> Option<Candidate> {
    let b = bounds(&mask, w)?;
    fill_holes(&mut mask, w, &b);
    let area = mask.iter().filter(|m| **m).count();
    let share = area as f32 / (w * h) as f32;
    let (bw, bh) = (b.x2 - b.x1, b.y2 - b.y1);
    let aspect = bw.max(bh) as f32 / bw.min(bh).max(1) as f32;
    let fill = area as f32 / (bw * bh).max(1) as f32;
    if !(MIN_AREA..=MAX_AREA).contains(&share) || aspect > MAX_ASPECT || fill < MIN_FILL {
        return None;
    }
    // A region that shades into its surroundings (a gradient's band, a shadow) is no
    // object.
    if outline_contrast(&mask, lab, w, h, &b) < MIN_OUTLINE {
        return None;
    }
    // A product rarely leaves the frame; a shelf or a floor often fills it.
    let touching = [b.x1 == 0, b.y1 == 0, b.x2 == w, b.y2 == h]
        .iter()
        .filter(|t| **t)
        .count() as f32;
    let score =
        surround_contrast(&mask, lab, w, h, &b) * fill.sqrt() * (1.0 - BORDER_PENALTY * touching);
    Some(Candidate {
        score,
        area,
        mask,
        bounds: b,
    })
}

/// A proposal before ranking, on the working raster.
struct Candidate {
    score: f32,
    area: usize,
    mask: Vec<bool>,
    bounds: Bounds,
}

impl Candidate {
    /// Whether the two silhouettes overlap by more than [`DUPLICATE_IOU`]. The shared
    /// pixels lie in the boxes' intersection: a small one settles it without a count.
    fn repeats(&self, other: &Candidate, w: usize) -> bool {
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
struct Bounds {
    x1: usize,
    y1: usize,
    x2: usize,
    y2: usize,
}

/// Bounding box of a mask, `None` when empty.
fn bounds(mask: &[bool], w: usize) -> Option<Bounds> {
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
fn fill_holes(mask: &mut [bool], w: usize, b: &Bounds) {
    let (bw, bh) = (b.x2 - b.x1, b.y2 - b.y1);
    let mut outside = vec![false; bw * bh];
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let free = |x: usize, y: usize, mask: &[bool]| !mask[(b.y1 + y) * w + b.x1 + x];
    for y in 0..bh {
        for x in 0..bw {
            let edge = x == 0 || y == 0 || x + 1 == bw || y + 1 == bh;
            if edge && free(x, y, mask) && !outside[y * bw + x] {
                outside[y * bw + x] = true;
                stack.push((x, y));
            }
        }
    }
    while let Some((x, y)) = stack.pop() {
        let mut visit = |nx: usize, ny: usize| {
            if nx < bw && ny < bh && !outside[ny * bw + nx] && free(nx, ny, mask) {
                outside[ny * bw + nx] = true;
                stack.push((nx, ny));
            }
        };
        visit(x + 1, y);
        visit(x, y + 1);
        if x > 0 {
            visit(x - 1, y);
        }
        if y > 0 {
            visit(x, y - 1);
        }
    }
    for y in 0..bh {
        for x in 0..bw {
            if !outside[y * bw + x] {
                mask[(b.y1 + y) * w + b.x1 + x] = true;
            }
        }
    }
}

/// Mean Lab distance across the mask's outline (each inside pixel of its box against
/// its 4-way outside neighbours): an object's edge is a step, a shading's is not.
fn outline_contrast(mask: &[bool], lab: &[[f32; 3]], w: usize, h: usize, b: &Bounds) -> f32 {
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

/// How different the mask's colours are from those around it: one minus the
/// intersection of the Lab histograms of the mask and of the ring of its box grown by
/// [`RING`] (0: same colours, 1: none shared). A product stands apart from the shelf
/// around it; a piece of the shelf does not.
fn surround_contrast(mask: &[bool], lab: &[[f32; 3]], w: usize, h: usize, b: &Bounds) -> f32 {
    let grow = |len: usize| ((len as f32 * RING).ceil() as usize).max(2);
    let (gx, gy) = (grow(b.x2 - b.x1), grow(b.y2 - b.y1));
    let (x1, y1) = (b.x1.saturating_sub(gx), b.y1.saturating_sub(gy));
    let (x2, y2) = ((b.x2 + gx).min(w), (b.y2 + gy).min(h));
    let mut inside = vec![0.0f32; 3 * RING_BINS];
    let mut around = vec![0.0f32; 3 * RING_BINS];
    for y in y1..y2 {
        for x in x1..x2 {
            let i = y * w + x;
            let hist = if mask[i] { &mut inside } else { &mut around };
            for (c, v) in lab[i].iter().enumerate() {
                hist[c * RING_BINS + bin(c, *v, RING_BINS)] += 1.0;
            }
        }
    }
    normalise(&mut inside);
    normalise(&mut around);
    let shared: f32 = inside.iter().zip(&around).map(|(p, q)| p.min(*q)).sum();
    1.0 - shared / 3.0
}

/// Histogram bin of Lab channel `c`'s value `v` among `bins` (L over 0..100, a and b
/// over -80..80, clamped).
fn bin(c: usize, v: f32, bins: usize) -> usize {
    let (lo, hi) = if c == 0 { (0.0, 100.0) } else { (-80.0, 80.0) };
    ((((v - lo) / (hi - lo)) * bins as f32) as isize).clamp(0, bins as isize - 1) as usize
}

/// Maps a working-raster box to the picture's pixels.
fn scale_back(b: &Bounds, (sw, sh): (usize, usize), (w, h): (u32, u32)) -> Region {
    let map = crate::vision::picture::region::scale_coordinate;
    Region {
        x1: map(b.x1, sw, w, false),
        x2: map(b.x2, sw, w, true),
        y1: map(b.y1, sh, h, false),
        y2: map(b.y2, sh, h, true),
    }
}

/// 3×3 binomial blur (edges repeat): takes the edge off JPEG blocks and sensor noise.
fn blur(raster: &Raster) -> Raster {
    let (w, h) = (raster.width, raster.height);
    let mut out = raster.clone();
    let at = |x: isize, y: isize| {
        let x = x.clamp(0, w as isize - 1) as usize;
        let y = y.clamp(0, h as isize - 1) as usize;
        raster.pixel(x, y)
    };
    const K: [f32; 3] = [0.25, 0.5, 0.25];
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0.0f32; 3];
            for (dy, ky) in K.iter().enumerate() {
                for (dx, kx) in K.iter().enumerate() {
                    let p = at(x as isize + dx as isize - 1, y as isize + dy as isize - 1);
                    for c in 0..3 {
                        acc[c] += ky * kx * p[c];
                    }
                }
            }
            let i = (y * w + x) * 3;
            out.data[i..i + 3].copy_from_slice(&acc);
        }
    }
    out
}

/// sRGB (0..255) to CIE Lab (D65).
fn to_lab(raster: &Raster) -> Vec<[f32; 3]> {
    let lin = |v: f32| {
        let v = v / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let f = |t: f32| {
        if t > 0.008_856 {
            t.cbrt()
        } else {
            7.787 * t + 16.0 / 116.0
        }
    };
    raster
        .pixels()
        .map(|[r, g, b]| {
            let (r, g, b) = (lin(r), lin(g), lin(b));
            let x = (0.412_456 * r + 0.357_576 * g + 0.180_438 * b) / 0.950_47;
            let y = 0.212_673 * r + 0.715_152 * g + 0.072_175 * b;
            let z = (0.019_334 * r + 0.119_192 * g + 0.950_304 * b) / 1.088_83;
            let (fx, fy, fz) = (f(x), f(y), f(z));
            [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
        })
        .collect()
}

/// Euclidean distance of two Lab colours (CIE76 ΔE).
fn delta_e(a: &[f32; 3], b: &[f32; 3]) -> f32 {
    let d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
}

/// Per pixel and Lab channel: gradient orientation bin (0..TEXTURE_BINS, undirected)
/// and magnitude, from central differences.
fn gradients(lab: &[[f32; 3]], w: usize, h: usize) -> Vec<[(u8, f32); 3]> {
    let at = |x: usize, y: usize| &lab[y * w + x];
    let mut out = vec![[(0u8, 0.0f32); 3]; w * h];
    for y in 0..h {
        for x in 0..w {
            let (l, r) = (at(x.saturating_sub(1), y), at((x + 1).min(w - 1), y));
            let (u, d) = (at(x, y.saturating_sub(1)), at(x, (y + 1).min(h - 1)));
            for c in 0..3 {
                let (gx, gy) = (r[c] - l[c], d[c] - u[c]);
                let angle = gy.atan2(gx).rem_euclid(std::f32::consts::PI);
                let bin = ((angle / std::f32::consts::PI * TEXTURE_BINS as f32) as usize)
                    .min(TEXTURE_BINS - 1);
                out[y * w + x][c] = (bin as u8, (gx * gx + gy * gy).sqrt());
            }
        }
    }
    out
}

/// Union-find over pixels with each set's size and largest internal edge.
struct Forest {
    parent: Vec<u32>,
    size: Vec<u32>,
    internal: Vec<f32>,
}

impl Forest {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
            internal: vec![0.0; n],
        }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }

    /// Joins two roots; the edge joining them becomes the set's largest internal one.
    fn join(&mut self, a: u32, b: u32, weight: f32) {
        let (big, small) = if self.size[a as usize] >= self.size[b as usize] {
            (a, b)
        } else {
            (b, a)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
        self.internal[big as usize] = weight;
    }
}

/// Felzenszwalb–Huttenlocher segmentation (8-connected grid graph, Lab ΔE weights,
/// scale `k`): one label per pixel, labels `0..n` in scan order of first appearance.
fn felzenszwalb(lab: &[[f32; 3]], w: usize, h: usize, k: f32) -> Vec<u32> {
    let mut edges: Vec<(f32, u32, u32)> = Vec::with_capacity(w * h * 4);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let mut edge = |j: usize| edges.push((delta_e(&lab[i], &lab[j]), i as u32, j as u32));
            if x + 1 < w {
                edge(i + 1);
            }
            if y + 1 < h {
                edge(i + w);
                if x + 1 < w {
                    edge(i + w + 1);
                }
                if x > 0 {
                    edge(i + w - 1);
                }
            }
        }
    }
    // Stable: equal weights keep scan order, so the result is deterministic.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut forest = Forest::new(w * h);
    for &(weight, a, b) in &edges {
        let (ra, rb) = (forest.find(a), forest.find(b));
        if ra == rb {
            continue;
        }
        let limit = |r: u32| forest.internal[r as usize] + k / forest.size[r as usize] as f32;
        if weight <= limit(ra).min(limit(rb)) {
            forest.join(ra, rb, weight);
        }
    }
    for &(weight, a, b) in &edges {
        let (ra, rb) = (forest.find(a), forest.find(b));
        let small = |r: u32| (forest.size[r as usize] as usize) < MIN_SEGMENT;
        if ra != rb && (small(ra) || small(rb)) {
            forest.join(ra, rb, weight);
        }
    }
    let mut ids = vec![u32::MAX; w * h];
    let mut next = 0u32;
    (0..w * h)
        .map(|i| {
            let root = forest.find(i as u32) as usize;
            if ids[root] == u32::MAX {
                ids[root] = next;
                next += 1;
            }
            ids[root]
        })
        .collect()
}

/// A region of the grouping hierarchy.
struct Group {
    size: usize,
    bounds: Bounds,
    colour: Vec<f32>,
    texture: Vec<f32>,
    /// Initial segments it is made of.
    members: Vec<u32>,
}

/// Selective search's hierarchical grouping over the segments `labels`: every region
/// the greedy merging passes through (the segments themselves included) whose size may
/// be a product's, as the segments it is made of.
fn group(
    labels: &[u32],
    lab: &[[f32; 3]],
    grads: &[[(u8, f32); 3]],
    w: usize,
    h: usize,
) -> Vec<Vec<u32>> {
    let n = labels.iter().max().map_or(0, |m| *m as usize + 1);
    let mut groups: Vec<Group> = (0..n)
        .map(|i| Group {
            size: 0,
            bounds: Bounds {
                x1: usize::MAX,
                y1: usize::MAX,
                x2: 0,
                y2: 0,
            },
            colour: vec![0.0; 3 * COLOUR_BINS],
            texture: vec![0.0; 3 * TEXTURE_BINS],
            members: vec![i as u32],
        })
        .collect();
    let mut neighbours: std::collections::BTreeSet<(u32, u32)> = Default::default();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let g = &mut groups[labels[i] as usize];
            g.size += 1;
            g.bounds.x1 = g.bounds.x1.min(x);
            g.bounds.y1 = g.bounds.y1.min(y);
            g.bounds.x2 = g.bounds.x2.max(x + 1);
            g.bounds.y2 = g.bounds.y2.max(y + 1);
            for (c, v) in lab[i].iter().enumerate() {
                g.colour[c * COLOUR_BINS + bin(c, *v, COLOUR_BINS)] += 1.0;
            }
            for (c, (bin, mag)) in grads[i].iter().enumerate() {
                g.texture[c * TEXTURE_BINS + usize::from(*bin)] += mag;
            }
            let mut pair = |j: usize| {
                let (a, b) = (labels[i], labels[j]);
                if a != b {
                    neighbours.insert((a.min(b), a.max(b)));
                }
            };
            if x + 1 < w {
                pair(i + 1);
            }
            if y + 1 < h {
                pair(i + w);
            }
        }
    }
    for g in &mut groups {
        normalise(&mut g.colour);
        normalise(&mut g.texture);
    }
    let total = (w * h) as f32;
    let similarity = |a: &Group, b: &Group| {
        let inter = |p: &[f32], q: &[f32]| p.iter().zip(q).map(|(x, y)| x.min(*y)).sum::<f32>();
        let joint = union(&a.bounds, &b.bounds);
        let box_area = ((joint.x2 - joint.x1) * (joint.y2 - joint.y1)) as f32;
        inter(&a.colour, &b.colour)
            + inter(&a.texture, &b.texture)
            + (1.0 - (a.size + b.size) as f32 / total)
            + (1.0 - (box_area - (a.size + b.size) as f32) / total)
    };
    let mut pairs: Vec<(f32, u32, u32)> = neighbours
        .into_iter()
        .map(|(a, b)| (similarity(&groups[a as usize], &groups[b as usize]), a, b))
        .collect();
    let mut alive = vec![true; n];
    while let Some(best) = (0..pairs.len()).max_by(|&i, &j| {
        pairs[i]
            .0
            .total_cmp(&pairs[j].0)
            .then_with(|| (pairs[j].1, pairs[j].2).cmp(&(pairs[i].1, pairs[i].2)))
    }) {
        let (_, a, b) = pairs[best];
        let (ga, gb) = (&groups[a as usize], &groups[b as usize]);
        let size = ga.size + gb.size;
        let mix = |p: &[f32], q: &[f32]| {
            p.iter()
                .zip(q)
                .map(|(x, y)| (x * ga.size as f32 + y * gb.size as f32) / size as f32)
                .collect::<Vec<f32>>()
        };
        let merged = Group {
            size,
            bounds: union(&ga.bounds, &gb.bounds),
            colour: mix(&ga.colour, &gb.colour),
            texture: mix(&ga.texture, &gb.texture),
            members: ga.members.iter().chain(&gb.members).copied().collect(),
        };
        let id = groups.len() as u32;
        alive[a as usize] = false;
        alive[b as usize] = false;
        alive.push(true);
        groups.push(merged);
        // The merged region inherits both parts' neighbours.
        let mut next: Vec<(f32, u32, u32)> = Vec::with_capacity(pairs.len());
        let mut touched: std::collections::BTreeSet<u32> = Default::default();
        for &(s, p, q) in &pairs {
            let hits = [p == a || p == b, q == a || q == b];
            match hits {
                [false, false] => next.push((s, p, q)),
                [true, true] => {}
                [true, false] => {
                    touched.insert(q);
                }
                [false, true] => {
                    touched.insert(p);
                }
            }
        }
        for t in touched {
            if alive[t as usize] {
                let s = similarity(&groups[t as usize], &groups[id as usize]);
                next.push((s, t, id));
            }
        }
        pairs = next;
    }
    let min = (MIN_AREA * total) as usize;
    let max = (MAX_AREA * total) as usize;
    groups
        .into_iter()
        .filter(|g| (min..=max).contains(&g.size))
        .map(|g| g.members)
        .collect()
}

/// The smallest box holding both.
fn union(a: &Bounds, b: &Bounds) -> Bounds {
    Bounds {
        x1: a.x1.min(b.x1),
        y1: a.y1.min(b.y1),
        x2: a.x2.max(b.x2),
        y2: a.y2.max(b.y2),
    }
}

/// Scales a histogram to sum 1 (an empty one stays zero).
fn normalise(hist: &mut [f32]) {
    let sum: f32 = hist.iter().sum();
    if sum > 0.0 {
        hist.iter_mut().for_each(|v| *v /= sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::testkit::{jpeg_roundtrip, textured, Rng};

    /// Box IoU.
    fn iou(a: &Region, b: &Region) -> f32 {
        let w = a.x2.min(b.x2).saturating_sub(a.x1.max(b.x1));
        let h = a.y2.min(b.y2).saturating_sub(a.y1.max(b.y1));
        let inter = u64::from(w) * u64::from(h);
        inter as f32 / (a.area() + b.area() - inter).max(1) as f32
    }

    /// A cardigan-like silhouette (body plus sleeves) filling `bx`.
    fn garment(x: u32, y: u32, bx: &Region) -> bool {
        let (w, h) = (bx.width(), bx.height());
        if !(bx.x1..bx.x2).contains(&x) || !(bx.y1..bx.y2).contains(&y) {
            return false;
        }
        let (dx, dy) = (x - bx.x1, y - bx.y1);
        let body = dx >= w / 4 && dx < w - w / 4;
        let sleeves = dy < h / 2;
        body || sleeves
    }

    /// `colour` garment on a busy, noisy, JPEG-compressed scene.
    fn pasted(seed: u64, bx: Region, colour: Rgb<u8>) -> RgbImage {
        let mut img = textured(seed, 512, 384);
        let mut rng = Rng::new(seed);
        for (x, y, p) in img.enumerate_pixels_mut() {
            let noise = |c: u8, r: u32| (i32::from(c) + r as i32 - 12).clamp(0, 255) as u8;
            if garment(x, y, &bx) {
                *p = colour;
            }
            let r = rng.below(25);
            *p = Rgb([noise(p[0], r), noise(p[1], r), noise(p[2], r)]);
        }
        jpeg_roundtrip(&img, 85)
    }

    #[test]
    fn a_plain_garment_on_a_busy_scene_is_proposed_with_its_silhouette() {
        let cases = [
            (
                3,
                Region {
                    x1: 150,
                    x2: 330,
                    y1: 90,
                    y2: 300,
                },
                Rgb([235, 200, 40]),
            ),
            (
                8,
                Region {
                    x1: 40,
                    x2: 200,
                    y1: 160,
                    y2: 360,
                },
                Rgb([40, 150, 70]),
            ),
            (
                21,
                Region {
                    x1: 300,
                    x2: 480,
                    y1: 30,
                    y2: 230,
                },
                Rgb([30, 60, 200]),
            ),
        ];
        for (seed, bx, colour) in cases {
            let img = pasted(seed, bx, colour);
            let proposals = propose(&img, 12);
            assert!(!proposals.is_empty() && proposals.len() <= 12);
            let best = proposals
                .iter()
                .max_by(|a, b| iou(&a.region, &bx).total_cmp(&iou(&b.region, &bx)))
                .unwrap();
            assert!(
                iou(&best.region, &bx) >= 0.8,
                "seed {seed}: best {} vs {bx}",
                best.region
            );
            // Its silhouette is the garment's: the composite is the garment on white.
            let (mut agree, mut n) = (0u32, 0u32);
            for y in (bx.y1..bx.y2).step_by(3) {
                for x in (bx.x1..bx.x2).step_by(3) {
                    agree += u32::from(best.covers(x, y) == garment(x, y, &bx));
                    n += 1;
                }
            }
            assert!(agree as f32 >= 0.9 * n as f32, "seed {seed}: {agree}/{n}");
            let composite = best.composite(&img);
            let (cw, ch) = composite.dimensions();
            assert!(cw > best.region.width() && ch > best.region.height());
            assert_eq!(composite.get_pixel(0, 0), &Rgb([255, 255, 255]));
            // Below the sleeves, beside the body, the scene's shelf is white.
            let at = |x: u32, y: u32| {
                let pad = |len: u32| (len as f32 * COMPOSITE_PAD).round() as u32;
                let r = best.region;
                composite.get_pixel(x - r.x1 + pad(r.width()), y - r.y1 + pad(r.height()))
            };
            let gap = at(bx.x1 + bx.width() / 10, bx.y2 - bx.height() / 8);
            assert_eq!(gap, &Rgb([255, 255, 255]), "seed {seed}");
            let sleeve = at(bx.x1 + bx.width() / 10, bx.y1 + bx.height() / 4);
            let near = (0..3).all(|c| (i32::from(sleeve[c]) - i32::from(colour[c])).abs() < 40);
            assert!(near, "seed {seed}: {sleeve:?} vs {colour:?}");
        }
    }

    #[test]
    fn plain_pictures_give_no_proposals() {
        let flat = RgbImage::from_pixel(400, 300, Rgb([250, 250, 250]));
        assert!(propose(&flat, 12).is_empty());
        let gradient = RgbImage::from_fn(400, 300, |x, y| {
            Rgb([(x * 255 / 400) as u8, (y * 255 / 300) as u8, 128])
        });
        assert!(propose(&jpeg_roundtrip(&gradient, 80), 12).is_empty());
        assert!(propose(&RgbImage::new(0, 0), 12).is_empty());
        assert!(propose(&textured(1, 320, 240), 0).is_empty());
    }

    #[test]
    fn proposals_are_capped_distinct_ranked_and_deterministic() {
        let img = textured(5, 480, 360);
        let all = propose(&img, 40);
        assert!(all.len() > 4, "{}", all.len());
        assert_eq!(propose(&img, 40), all);
        assert_eq!(propose(&img, 4), all[..4].to_vec());
        assert!(all.windows(2).all(|w| w[0].score >= w[1].score));
        for p in &all {
            assert!(p.region.validate_within(480, 360).is_ok(), "{}", p.region);
            let share = p.area_share();
            assert!((MIN_AREA..=MAX_AREA).contains(&share), "{share}");
        }
        for (i, a) in all.iter().enumerate() {
            for b in &all[..i] {
                let (a, b) = (
                    Candidate {
                        score: 0.0,
                        area: a.mask.iter().filter(|m| **m).count(),
                        mask: a.mask.clone(),
                        bounds: bounds(&a.mask, a.work.0).unwrap(),
                    },
                    Candidate {
                        score: 0.0,
                        area: b.mask.iter().filter(|m| **m).count(),
                        mask: b.mask.clone(),
                        bounds: bounds(&b.mask, b.work.0).unwrap(),
                    },
                );
                assert!(!a.repeats(&b, all[0].work.0));
            }
        }
    }

    #[test]
    fn holes_are_filled_and_duplicates_recognised() {
        let (w, h) = (12, 10);
        // A ring with a hole in the middle.
        let mut mask: Vec<bool> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                (2..9).contains(&x) && (2..8).contains(&y) && !((4..7).contains(&x) && y == 4)
            })
            .collect();
        let b = bounds(&mask, w).unwrap();
        assert_eq!((b.x1, b.x2, b.y1, b.y2), (2, 9, 2, 8));
        fill_holes(&mut mask, w, &b);
        assert_eq!(mask.iter().filter(|m| **m).count(), 7 * 6);
        let cand = |mask: Vec<bool>| Candidate {
            score: 0.0,
            area: mask.iter().filter(|m| **m).count(),
            bounds: bounds(&mask, w).unwrap(),
            mask,
        };
        let a = cand(mask.clone());
        let mut shifted = vec![false; w * h];
        shifted[1..].copy_from_slice(&mask[..w * h - 1]);
        assert!(a.repeats(&cand(mask.clone()), w));
        // One column over: 35 of 49 pixels shared, IoU 0.71.
        assert!(!a.repeats(&cand(shifted), w));
    }
}
