//! Tests of the area-average resampling.

use super::*;
use image::Rgb;

#[test]
fn weights_cover_each_output_once() {
    for (n, m) in [(640, 128), (7, 3), (3, 7), (128, 128), (1, 5)] {
        for t in taps(n, m) {
            let sum: f32 = t.weights.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "n={n} m={m} sum={sum}");
            assert!(t.first + t.weights.len() <= n);
        }
    }
}

/// The resize as it was written first: a whole-region intermediate of rows, then
/// columns. The streamed rows must give exactly its samples.
fn two_passes(src: &RgbImage, r: Region, dst_w: usize, dst_h: usize) -> Vec<f32> {
    let raw = src.as_raw();
    let stride = src.width() as usize * 3;
    let (x0, y0) = (r.x1 as usize, r.y1 as usize);
    let (sw, sh) = (r.width() as usize, r.height() as usize);
    let (hx, vy) = (taps(sw, dst_w), taps(sh, dst_h));
    let mut rows = vec![0.0f32; dst_w * sh * 3];
    for (y, row_out) in rows.chunks_exact_mut(dst_w * 3).enumerate() {
        let start = (y0 + y) * stride + x0 * 3;
        horizontal_scalar(&raw[start..start + sw * 3], &hx, row_out);
    }
    let mut out = vec![0.0f32; dst_w * dst_h * 3];
    for (t, row_out) in vy.iter().zip(out.chunks_exact_mut(dst_w * 3)) {
        let span = rows.chunks_exact(dst_w * 3).skip(t.first);
        for (w, row_in) in t.weights.iter().zip(span) {
            for (o, s) in row_out.iter_mut().zip(row_in) {
                *o += w * s;
            }
        }
    }
    out
}

#[test]
fn streamed_rows_are_bit_identical_to_two_whole_passes() {
    let img = RgbImage::from_fn(640, 480, |x, y| {
        Rgb([(x * 7 + y) as u8, (x ^ y) as u8, (x * y / 13) as u8])
    });
    let inner = Region {
        x1: 37,
        x2: 601,
        y1: 11,
        y2: 299,
    };
    for (region, w, h) in [
        (Region::full(640, 480), 224, 224),
        (Region::full(640, 480), 128, 96),
        (Region::full(640, 480), 700, 500),
        (inner, 224, 224),
        (inner, 5, 301),
    ] {
        let streamed = area_resize(&img, Some(&region), w, h);
        let expected = two_passes(&img, region, w, h);
        assert!(
            streamed
                .data
                .iter()
                .zip(&expected)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{region:?} -> {w}x{h}"
        );
        assert_eq!(streamed.data.len(), expected.len());
    }
}

#[test]
fn the_vector_horizontal_pass_gives_the_scalar_samples() {
    let mut rng = crate::vision::testkit::Rng::new(5);
    let mut wide = Vec::new();
    for (n, m) in [
        (640, 224),
        (480, 224),
        (7, 3),
        (3, 7),
        (1, 1),
        (1, 5),
        (333, 332),
        (100, 1),
    ] {
        let row: Vec<u8> = (0..n * 3).map(|_| rng.next() as u8).collect();
        let hx = taps(n, m);
        let mut want = vec![0.0f32; m * 3];
        horizontal_scalar(&row, &hx, &mut want);
        let mut got = vec![0.0f32; m * 3];
        horizontal(&row, &hx, &mut wide, &mut got);
        assert!(
            got.iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{n} -> {m}"
        );
    }
}

#[test]
fn halving_averages_two_by_two_blocks() {
    let img = RgbImage::from_fn(4, 2, |x, _| Rgb([(x * 40) as u8, 100, 200]));
    let r = area_resize(&img, None, 2, 1);
    assert_eq!(r.pixel(0, 0), [20.0, 100.0, 200.0]);
    assert_eq!(r.pixel(1, 0), [100.0, 100.0, 200.0]);
}

#[test]
fn uniform_picture_stays_uniform_at_any_scale() {
    let img = RgbImage::from_pixel(97, 61, Rgb([10, 20, 30]));
    for (w, h) in [(13, 7), (128, 128), (200, 3)] {
        let r = area_resize(&img, None, w, h);
        for p in r.pixels() {
            for (got, want) in p.iter().zip([10.0, 20.0, 30.0]) {
                assert!((got - want).abs() < 1e-3);
            }
        }
    }
}

#[test]
fn region_selects_the_source_window() {
    let img = RgbImage::from_fn(10, 10, |x, _| {
        if x < 5 {
            Rgb([0, 0, 0])
        } else {
            Rgb([255, 255, 255])
        }
    });
    let right = Region {
        x1: 5,
        x2: 10,
        y1: 0,
        y2: 10,
    };
    let r = area_resize(&img, Some(&right), 3, 3);
    assert!(r.pixels().all(|p| p == [255.0; 3]));
}

#[test]
fn degenerate_inputs_still_give_rasters() {
    let empty = RgbImage::new(0, 0);
    let r = area_resize(&empty, None, 4, 4);
    assert_eq!(r.data.len(), 48);
    let img = RgbImage::from_pixel(5, 5, Rgb([9, 9, 9]));
    let outside = Region {
        x1: 50,
        x2: 60,
        y1: 0,
        y2: 5,
    };
    assert!(area_resize(&img, Some(&outside), 2, 2)
        .data
        .iter()
        .all(|v| *v == 9.0));
    assert_eq!(area_resize(&img, None, 0, 0).data.len(), 3);
}

#[test]
fn halving_averages_blocks() {
    let plane: Vec<f32> = (0..20).map(|v| v as f32).collect(); // 5x4
    let (half, w, h) = halve(&plane, 5, 4);
    assert_eq!((w, h), (2, 2));
    assert_eq!(half, vec![3.0, 5.0, 13.0, 15.0]);
    assert_eq!(halve(&[1.0], 1, 1).0, Vec::<f32>::new());
}

#[test]
fn halving_matches_resizing_to_half() {
    let img = RgbImage::from_fn(97, 61, |x, y| Rgb([(x * 2) as u8, (y * 3) as u8, 7]));
    let big = area_resize(&img, None, 64, 64);
    let small = area_resize(&img, None, 32, 32);
    let (half, _, _) = halve(&big.luma(), 64, 64);
    for (a, b) in half.iter().zip(small.luma()) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}

#[test]
fn centre_window_is_symmetric_and_peaks_in_the_middle() {
    let w = centre_window(128, 0.2);
    assert!((w[63] - w[64]).abs() < 1e-7 && w[63] > 0.999);
    for i in 0..64 {
        assert_eq!(w[i], w[127 - i]);
    }
    assert!(w.windows(2).take(63).all(|p| p[0] < p[1]));
    // Close to exp(-d^2 / 2 sigma^2) where it matters.
    let d = (10.5f32 / 128.0) - 0.5;
    let exact = (-(d * d) / (2.0 * 0.04)).exp();
    assert!((w[10] - exact).abs() < 0.01, "{} vs {exact}", w[10]);
}

#[test]
fn fit_keeps_aspect_ratio() {
    assert_eq!(fit_longest(640, 480, 128), (128, 96));
    assert_eq!(fit_longest(100, 4000, 128), (3, 128));
    assert_eq!(fit_longest(50, 20, 128), (50, 20));
    assert_eq!(fit_longest(0, 0, 128), (1, 1));
}
