//! Felzenszwalb–Huttenlocher graph segmentation: pixels joined into small uniform
//! regions, an edge joining two regions only when it is weaker than both are inside.

use super::pixels::delta_e;
use super::MIN_SEGMENT;

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
pub(super) fn felzenszwalb(lab: &[[f32; 3]], w: usize, h: usize, k: f32) -> Vec<u32> {
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
