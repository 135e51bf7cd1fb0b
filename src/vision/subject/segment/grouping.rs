//! Selective search's hierarchical grouping: the two most similar neighbouring regions
//! merged again and again, every region passed through a candidate.

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
        .map(|g| (g.members, g.bounds))
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
