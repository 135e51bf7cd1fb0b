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

/// The 8-connected grid graph of a Lab raster, its edges (Lab ΔE weight, pixel, pixel)
/// sorted by weight: the same for every scale, so sorted once
/// ([`felzenszwalb`] per scale).
pub(super) struct Graph {
    edges: Vec<(f32, u32, u32)>,
    pixels: usize,
}

impl Graph {
    /// The graph of `lab` (`w` × `h`, row-major).
    pub(super) fn new(lab: &[[f32; 3]], w: usize, h: usize) -> Self {
        let mut edges: Vec<(f32, u32, u32)> = Vec::with_capacity(w * h * 4);
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let mut edge =
                    |j: usize| edges.push((delta_e(&lab[i], &lab[j]), i as u32, j as u32));
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
        // By weight, equal weights in scan order (deterministic): the weights are
        // non-negative, so their bits order as they do, and with the edge's index below
        // them every key is distinct (an unstable sort of plain integers, the order of
        // a stable sort by weight).
        let mut keys: Vec<u64> = edges
            .iter()
            .enumerate()
            .map(|(at, e)| (u64::from(e.0.to_bits()) << 32) | at as u64)
            .collect();
        keys.sort_unstable();
        let edges = keys
            .into_iter()
            .map(|key| edges[(key & u64::from(u32::MAX)) as usize])
            .collect();
        Graph {
            edges,
            pixels: w * h,
        }
    }
}

/// Felzenszwalb–Huttenlocher segmentation of `graph` at scale `k`: one label per
/// pixel, labels `0..n` in scan order of first appearance.
pub(super) fn felzenszwalb(graph: &Graph, k: f32) -> Vec<u32> {
    let edges = &graph.edges;
    let n = graph.pixels;
    let mut forest = Forest::new(n);
    for &(weight, a, b) in edges {
        let (ra, rb) = (forest.find(a), forest.find(b));
        if ra == rb {
            continue;
        }
        let limit = |r: u32| forest.internal[r as usize] + k / forest.size[r as usize] as f32;
        if weight <= limit(ra).min(limit(rb)) {
            forest.join(ra, rb, weight);
        }
    }
    for &(weight, a, b) in edges {
        let (ra, rb) = (forest.find(a), forest.find(b));
        let small = |r: u32| (forest.size[r as usize] as usize) < MIN_SEGMENT;
        if ra != rb && (small(ra) || small(rb)) {
            forest.join(ra, rb, weight);
        }
    }
    let mut ids = vec![u32::MAX; n];
    let mut next = 0u32;
    (0..n)
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
