//! Selective search's hierarchical grouping: the two most similar neighbouring regions
//! merged again and again, every region passed through a candidate.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::candidate::Bounds;
use super::pixels::{bin, normalise};
use super::{COLOUR_BINS, MAX_AREA, MIN_AREA, TEXTURE_BINS};

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
/// be a product's, as the segments it is made of and their bounding box.
pub(super) fn group(
    labels: &[u32],
    lab: &[[f32; 3]],
    grads: &[[(u8, f32); 3]],
    w: usize,
    h: usize,
) -> Vec<(Vec<u32>, Bounds)> {
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
    // Every neighbouring pair of segments, as (lower, higher) in one u64, repeats
    // included: sorted and deduplicated once after the scan (the same pairs in the same
    // order as an ordered set, without a tree insertion per pixel). A pixel mostly
    // repeats its left neighbour's pairs: those are not pushed again.
    let mut neighbours: Vec<u64> = Vec::new();
    let mut last = [u64::MAX; 2];
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
            let mut pair = |j: usize, last: &mut u64| {
                let (a, b) = (labels[i], labels[j]);
                let key = (u64::from(a.min(b)) << 32) | u64::from(a.max(b));
                if a != b && key != *last {
                    neighbours.push(key);
                    *last = key;
                }
            };
            if x + 1 < w {
                pair(i + 1, &mut last[0]);
            }
            if y + 1 < h {
                pair(i + w, &mut last[1]);
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
    // Every pair of neighbouring live regions is in the heap; a pair whose region was
    // merged since is dropped when it comes up (the same order as picking the best of
    // a fresh list at every step, without scanning and rebuilding it per merge).
    neighbours.sort_unstable();
    neighbours.dedup();
    let mut adjacent: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut pairs: BinaryHeap<Pair> = BinaryHeap::with_capacity(2 * neighbours.len());
    for (a, b) in neighbours.into_iter().map(|k| ((k >> 32) as u32, k as u32)) {
        adjacent[a as usize].push(b);
        adjacent[b as usize].push(a);
        pairs.push(Pair {
            similarity: similarity(&groups[a as usize], &groups[b as usize]),
            a,
            b,
        });
    }
    let mut alive = vec![true; n];
    while let Some(Pair { a, b, .. }) = pairs.pop() {
        if !alive[a as usize] || !alive[b as usize] {
            continue;
        }
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
        // The merged region inherits both parts' live neighbours.
        let mut touched: Vec<u32> = adjacent[a as usize]
            .iter()
            .chain(&adjacent[b as usize])
            .copied()
            .filter(|&t| alive[t as usize])
            .collect();
        touched.sort_unstable();
        touched.dedup();
        for &t in &touched {
            pairs.push(Pair {
                similarity: similarity(&groups[t as usize], &groups[id as usize]),
                a: t,
                b: id,
            });
            adjacent[t as usize].push(id);
        }
        adjacent[a as usize] = Vec::new();
        adjacent[b as usize] = Vec::new();
        adjacent.push(touched);
    }
    let min = (MIN_AREA * total) as usize;
    let max = (MAX_AREA * total) as usize;
    groups
        .into_iter()
        .filter(|g| (min..=max).contains(&g.size))
        .map(|g| (g.members, g.bounds))
        .collect()
}

/// Two neighbouring regions (`a` < `b`) and their similarity, ordered as the merge
/// takes them: most similar first, equal ones by their regions, lowest first.
struct Pair {
    similarity: f32,
    a: u32,
    b: u32,
}

impl Ord for Pair {
    fn cmp(&self, other: &Self) -> Ordering {
        self.similarity
            .total_cmp(&other.similarity)
            .then_with(|| (other.a, other.b).cmp(&(self.a, self.b)))
    }
}

impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pair {}

/// The smallest box holding both.
fn union(a: &Bounds, b: &Bounds) -> Bounds {
    Bounds {
        x1: a.x1.min(b.x1),
        y1: a.y1.min(b.y1),
        x2: a.x2.max(b.x2),
        y2: a.y2.max(b.y2),
    }
}
