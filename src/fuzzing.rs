//! Fuzz target bodies: each takes arbitrary bytes and drives one parser of untrusted
//! input the way a request does. The `fuzz/` crate (cargo-fuzz, nightly) calls them;
//! the tests below replay the seed corpus (`fuzz/corpus/<target>/`) and every input
//! that once crashed (`fuzz/regressions/<target>/`) on stable, so CI keeps them fixed.
//!
//! A target may return errors for bad input (that is the point); it must not panic,
//! hang, or allocate in proportion to a size the input merely declares. Where a
//! parser has an invariant (a parsed Filter prints to text that parses back to the
//! same expression), the target asserts it.

use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::api::limits;
use crate::api::params::Params;
use crate::auth::{AccessKey, AccessKeys, RequestToVerify, SignatureStyle, Verifier};
use crate::filter;
use crate::vision::{self, PixelLimits, Region};

/// The picture gate and decoder, with the server's limits, then the Region parser
/// against the decoded size.
pub fn picture(data: &[u8]) {
    let limits = PixelLimits::default();
    if let Ok(picture) = vision::decode(data, &limits) {
        assert!(
            (limits.min_side..=limits.max_side).contains(&picture.width())
                && (limits.min_side..=limits.max_side).contains(&picture.height()),
            "decoded {}x{} outside the limits",
            picture.width(),
            picture.height()
        );
        assert_eq!(
            picture.rgb().len() as u64,
            u64::from(picture.width()) * u64::from(picture.height()) * 3
        );
    }
}

/// The Filter parser (delete-sized limit); a parsed filter must print to text that
/// parses to the same expression.
pub fn filter(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(expr) = filter::parse(&text, limits::MAX_DELETE_FILTER_CHARS) {
        let printed = expr.to_string();
        let again = filter::parse(&printed, usize::MAX)
            .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(again, expr, "{text:?} printed as {printed:?}");
    }
}

/// Query and form body (split at the first NUL byte) through the parameter merger and
/// every typed getter an Action uses.
pub fn params(data: &[u8]) {
    let (query, body) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let query = String::from_utf8_lossy(query);
    let Ok(params) = Params::from_request(Some(&query), &HeaderMap::new(), body) else {
        return;
    };
    let _ = limits::search_query(&params);
    let _ = limits::attributes(&params);
    let _ = limits::page(&params);
    let _ = limits::category(&params);
    let _ = limits::filter(&params, limits::MAX_SEARCH_FILTER_CHARS);
    let _ = limits::name(
        &params,
        "ProductId",
        crate::api::VendorCode::InvalidProductId,
    );
    let _ = params.picture("PicContent", limits::MAX_PICTURE_BYTES);
    let _ = params.boolean("Crop", true);
    if let Some(region) = params.optional("Region") {
        let _ = Region::parse(region);
    }
}

/// The signature checks. The input is split at `\n` into: style selector, the
/// Authorization (or Signature) value, `x-acs-date`, `x-acs-signature-nonce`,
/// `x-acs-content-sha256`, the query, and the rest is the body.
pub fn signature(data: &[u8]) {
    let mut parts = data.splitn(7, |&b| b == b'\n');
    let mut next = || parts.next().unwrap_or_default();
    let (style, auth, date, nonce, sha, query, body) =
        (next(), next(), next(), next(), next(), next(), next());
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &[u8]| {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.append(HeaderName::from_static(name), v);
        }
    };
    let query = String::from_utf8_lossy(query);
    let query = match style.first().copied().unwrap_or(0) % 3 {
        0 => {
            set("authorization", auth);
            set("x-acs-date", date);
            set("x-acs-signature-nonce", nonce);
            set("x-acs-content-sha256", sha);
            set("x-acs-action", b"SearchImageByPic");
            query.into_owned()
        }
        1 => {
            set("authorization", auth);
            set("date", date);
            set("content-md5", sha);
            query.into_owned()
        }
        _ => format!("{query}&Signature={}", String::from_utf8_lossy(auth)),
    };
    let keys =
        AccessKeys::from_list([AccessKey::new("testid", "testsecret")]).expect("one valid key");
    let verifier = Verifier::with_nonce_capacity(keys, crate::auth::DEFAULT_MAX_SKEW, 16);
    let request = RequestToVerify {
        method: "POST",
        path: "/",
        raw_query: Some(&query),
        headers: &headers,
        body,
    };
    let _ = SignatureStyle::detect(&request);
    let _ = verifier.verify(&request, SystemTime::now());
}

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// The targets by name, as the `fuzz/` crate and the corpus replay know them.
pub const TARGETS: &[(&str, Target)] = &[
    ("picture", picture),
    ("filter", filter),
    ("params", params),
    ("signature", signature),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of the seed corpus and the regressions, through its target.
    #[test]
    fn replay_seed_corpus_and_regressions() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        for (name, target) in TARGETS {
            let mut count = 0;
            for folder in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(root.join(folder).join(name)) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let data = std::fs::read(entry.path()).unwrap();
                    target(&data);
                    count += 1;
                }
            }
            assert!(count >= 5, "{name}: only {count} seed files");
        }
    }

    /// Writes the picture seeds (`cargo test --release --lib -- --ignored
    /// write_picture_seeds`): every format of one small scene, plus lying headers.
    #[test]
    #[ignore]
    fn write_picture_seeds() {
        use crate::vision::testkit::{encode, png_chunk, scene};
        use image::ImageFormat;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/picture");
        std::fs::create_dir_all(&dir).unwrap();
        let img = scene(7, 128, 112);
        for (name, format) in [
            ("scene.png", ImageFormat::Png),
            ("scene.jpg", ImageFormat::Jpeg),
            ("scene.bmp", ImageFormat::Bmp),
            ("scene.gif", ImageFormat::Gif),
            ("scene.webp", ImageFormat::WebP),
            ("scene.tiff", ImageFormat::Tiff),
            ("scene.ppm", ImageFormat::Pnm),
        ] {
            std::fs::write(dir.join(name), encode(&img, format)).unwrap();
        }
        let png = encode(&img, ImageFormat::Png);
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut bomb = png[..8].to_vec();
        bomb.extend(png_chunk(b"IHDR", &ihdr));
        bomb.extend_from_slice(&png[33..]);
        std::fs::write(dir.join("bomb.png"), bomb).unwrap();
        let jpeg = encode(&img, ImageFormat::Jpeg);
        std::fs::write(dir.join("truncated.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    }
}
