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
    /// The graph of `lab` (`w` × `h`, row-major); `steps` holds each pixel's distances
    /// to its right and lower neighbours (`candidate::neighbour_steps`), the weights of
    /// those edges, so only the diagonal ones are computed here.
    pub(super) fn new(lab: &[[f32; 3]], steps: &[[f32; 2]], w: usize, h: usize) -> Self {
        let mut edges: Vec<(f32, u32, u32)> = Vec::with_capacity(w * h * 4);
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let mut edge = |weight: f32, j: usize| edges.push((weight, i as u32, j as u32));
                let diagonal = |j: usize| delta_e(&lab[i], &lab[j]);
                if x + 1 < w {
                    edge(steps[i][0], i + 1);
                }
                if y + 1 < h {
                    edge(steps[i][1], i + w);
                    if x + 1 < w {
                        edge(diagonal(i + w + 1), i + w + 1);
                    }
                    if x > 0 {
                        edge(diagonal(i + w - 1), i + w - 1);
                    }
                }
            }
        }
        Graph {
            edges: sorted_by_weight(edges),
            pixels: w * h,
        }
    }
}

/// `edges` by weight, equal weights in their order (scan order: deterministic). The
/// weights are non-negative, so their bits order as they do: a stable radix sort on
/// them, a byte a pass, gives the order of a stable sort by weight in four linear
/// passes (a comparison sort of a raster's 100,000 edges cost as much as a
/// segmentation scale).
fn sorted_by_weight(mut edges: Vec<(f32, u32, u32)>) -> Vec<(f32, u32, u32)> {
    let mut spare = vec![(0f32, 0u32, 0u32); edges.len()];
    for shift in [0u32, 8, 16, 24] {
        let digit = |e: &(f32, u32, u32)| ((e.0.to_bits() >> shift) & 0xff) as usize;
        let mut starts = [0usize; 257];
        for e in &edges {
            starts[digit(e) + 1] += 1;
        }
        // A pass whose digit is the same for every edge changes nothing.
        if starts.contains(&edges.len()) {
            continue;
        }
        for d in 0..256 {
            starts[d + 1] += starts[d];
        }
        for e in &edges {
            let at = &mut starts[digit(e)];
            spare[*at] = *e;
            *at += 1;
        }
        std::mem::swap(&mut edges, &mut spare);
    }
    edges
}

/// Felzenszwalb–Huttenlocher segmentation of `graph` at scale `k`: one label per
/// pixel, labels `0..n` in scan order of first appearance.
pub(super) fn felzenszwalb(graph: &Graph, k: f32) -> Vec<u32> {
    let edges = &graph.edges;
    let n = graph.pixels;
    let mut forest = Forest::new(n);
    // Each root's limit, internal edge + k / size, kept up to date as roots join
    // rather than divided out again for every edge (the same values).
    let limit_of =
        |forest: &Forest, r: u32| forest.internal[r as usize] + k / forest.size[r as usize] as f32;
    let mut limit = vec![k; n];
    for &(weight, a, b) in edges {
        let (ra, rb) = (forest.find(a), forest.find(b));
        if ra == rb {
            continue;
        }
        if weight <= limit[ra as usize].min(limit[rb as usize]) {
            forest.join(ra, rb, weight);
            let root = forest.find(ra);
            limit[root as usize] = limit_of(&forest, root);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_edge_weighs_its_pixels_lab_distance() {
        let mut rng = crate::vision::testkit::Rng::new(13);
        let (w, h) = (23usize, 17usize);
        let lab: Vec<[f32; 3]> = (0..w * h)
            .map(|_| [0, 1, 2].map(|_| (rng.next() % 10_000) as f32 / 77.0 - 40.0))
            .collect();
        let steps = super::super::candidate::neighbour_steps(&lab, w, h);
        let graph = Graph::new(&lab, &steps, w, h);
        // (w - 1) h right, w (h - 1) down, (w - 1) (h - 1) of each diagonal.
        assert_eq!(graph.edges.len(), 4 * (w - 1) * (h - 1) + (w - 1) + (h - 1));
        for &(weight, a, b) in &graph.edges {
            let want = delta_e(&lab[a as usize], &lab[b as usize]);
            assert_eq!(weight.to_bits(), want.to_bits(), "{a} {b}");
        }
    }

    #[test]
    fn the_radix_order_is_a_stable_sort_by_weight() {
        let mut rng = crate::vision::testkit::Rng::new(7);
        let mut next = move || rng.next();
        for n in [0usize, 1, 7, 3000] {
            // Few distinct weights (many ties), zeros, and wide ones.
            let edges: Vec<(f32, u32, u32)> = (0..n)
                .map(|i| {
                    let r = next();
                    let weight = match r % 4 {
                        0 => 0.0,
                        1 => (r % 7) as f32 * 0.5,
                        _ => (r >> 40) as f32 / 1000.0,
                    };
                    (weight, i as u32, (r >> 8) as u32)
                })
                .collect();
            let mut want = edges.clone();
            want.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert_eq!(sorted_by_weight(edges), want, "{n} edges");
        }
    }
}
