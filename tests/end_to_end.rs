//! End to end over real HTTP: add 50 pictures, find each by its own picture, delete
//! some, restart, find the rest; plus the reply shapes and first error codes, and a
//! garment photographed on a busy scene found through `serve --scene-proposals`.

mod common;

use common::{auctions, b64, picture, Server};
use serde_json::Value;

const INSTANCE: &str = "demoinstance";
const PICTURES: u64 = 50;

fn add(server: &Server, i: u64) -> Value {
    let int_attr = (i * 10).to_string();
    server.add_image(
        INSTANCE,
        &format!("p{i}"),
        &format!("{i}.png"),
        &picture(i),
        &[
            ("IntAttr", &int_attr),
            ("StrAttr", "colour"),
            ("CustomContent", "k:v"),
        ],
    )
}

fn search(server: &Server, i: u64) -> Value {
    let content = b64(&picture(i));
    let (status, reply) = server.call(
        "SearchImageByPic",
        &[("InstanceName", INSTANCE), ("PicContent", &content)],
    );
    assert_eq!(status, 200, "{reply}");
    reply
}

fn assert_found_first(server: &Server, i: u64) {
    let reply = search(server, i);
    let hits = auctions(&reply);
    let (product, name, score) = hits
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no results for {i}: {reply}"));
    assert_eq!(
        (product.as_str(), name.as_str()),
        (format!("p{i}").as_str(), format!("{i}.png").as_str()),
        "{reply}"
    );
    assert!(score >= 0.99, "picture {i} scored {score}");
}

fn assert_not_found(server: &Server, i: u64) {
    let reply = search(server, i);
    let name = format!("{i}.png");
    assert!(
        auctions(&reply).iter().all(|(_, n, _)| *n != name),
        "deleted picture {i} still found: {reply}"
    );
}

#[test]
fn add_search_delete_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data);

    let added = add(&server, 0);
    assert_eq!(added["Code"], 0);
    assert_eq!(added["Success"], true);
    assert!(added["PicInfo"]["Region"].as_str().is_some(), "{added}");
    for i in 1..PICTURES {
        add(&server, i);
    }

    // The reply has the vendor's shape, the identical picture first with Score 1.0.
    let reply = search(&server, 7);
    let keys: Vec<&str> = reply
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "Auctions",
            "Head",
            "PicInfo",
            "RequestId",
            "Msg",
            "Success",
            "Code"
        ],
        "{reply}"
    );
    assert_eq!(reply["Msg"], "success");
    let first = &reply["Auctions"][0];
    assert_eq!(first["Score"].as_f64(), Some(1.0), "{reply}");
    assert_eq!(first["SortExprValues"], "1;0");
    assert_eq!(first["IntAttr"], 70);
    assert_eq!(first["StrAttr"], "colour");
    assert_eq!(first["CustomContent"], "k:v");
    assert_eq!(first["CategoryId"], 88888888);
    assert_eq!(reply["Head"]["DocsReturn"], 10);
    assert_eq!(reply["Head"]["DocsFound"], PICTURES);
    assert_eq!(
        reply["PicInfo"]["AllCategories"].as_array().map(Vec::len),
        Some(14)
    );
    assert_ne!(reply["RequestId"], search(&server, 7)["RequestId"]);

    for i in 0..PICTURES {
        assert_found_first(&server, i);
    }

    // Delete ten: five by ProductId+PicName, five by ProductId alone.
    for i in 0..10u64 {
        let product = format!("p{i}");
        let name = format!("{i}.png");
        let mut params = vec![("InstanceName", INSTANCE), ("ProductId", product.as_str())];
        if i % 2 == 0 {
            params.push(("PicName", name.as_str()));
        }
        let (status, reply) = server.call("DeleteImage", &params);
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["Data"]["PicNames"], serde_json::json!([name]));
    }
    for i in 0..10 {
        assert_not_found(&server, i);
    }
    let (_, detail) = server.call("Detail", &[("InstanceName", INSTANCE)]);
    assert_eq!(detail["Instance"]["TotalCount"], PICTURES - 10, "{detail}");

    // Graceful restart: the rest is found again, the deleted stay gone.
    server.stop();
    let server = Server::start(&data);
    for i in 10..PICTURES {
        assert_found_first(&server, i);
    }
    for i in 0..10 {
        assert_not_found(&server, i);
    }
    let (_, detail) = server.call("Detail", &[("InstanceName", INSTANCE)]);
    assert_eq!(detail["Instance"]["TotalCount"], PICTURES - 10);

    // Search by a stored picture's name finds it first.
    let (status, by_name) = server.call(
        "SearchImageByName",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", "p12"),
            ("PicName", "12.png"),
        ],
    );
    assert_eq!(status, 200, "{by_name}");
    assert_eq!(auctions(&by_name)[0].1, "12.png");
}

#[test]
fn replacing_a_picture_keeps_one_copy() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let content_a = b64(&picture(100));
    let content_b = b64(&picture(101));
    for content in [&content_a, &content_b] {
        let (status, reply) = server.call(
            "AddImage",
            &[
                ("InstanceName", INSTANCE),
                ("ProductId", "p"),
                ("PicName", "x.png"),
                ("PicContent", content),
            ],
        );
        assert_eq!(status, 200, "{reply}");
    }
    let (_, detail) = server.call("Detail", &[("InstanceName", INSTANCE)]);
    assert_eq!(detail["Instance"]["TotalCount"], 1);
    let (_, reply) = server.call(
        "SearchImageByPic",
        &[("InstanceName", INSTANCE), ("PicContent", &content_b)],
    );
    assert_eq!(auctions(&reply).len(), 1, "{reply}");
    assert_eq!(auctions(&reply)[0].2, 1.0);
}

/// (Action, parameters, HTTP status, vendor code).
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);

#[test]
fn errors_have_vendor_codes_and_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let content = b64(&picture(1));
    let tiny = b64(&common::encode(
        &image::RgbImage::new(20, 20),
        image::ImageFormat::Png,
    ));
    let cases: Vec<Case> = vec![
        (
            "SearchImageByPic",
            vec![("InstanceName", "nosuch"), ("PicContent", &content)],
            400,
            "InvalidInstance",
        ),
        (
            "SearchImageByPic",
            vec![("InstanceName", INSTANCE)],
            400,
            "MissingParameter",
        ),
        (
            "SearchImageByPic",
            vec![("InstanceName", INSTANCE), ("PicContent", "!!notbase64")],
            400,
            "InvalidPicContent",
        ),
        (
            "SearchImageByPic",
            vec![
                ("InstanceName", INSTANCE),
                ("PicContent", "aGVsbG8gd29ybGQ="),
            ],
            400,
            "UnsupportedPicFormat",
        ),
        (
            "SearchImageByPic",
            vec![("InstanceName", INSTANCE), ("PicContent", &tiny)],
            400,
            "UnsupportedPicPixels",
        ),
        (
            "SearchImageByPic",
            vec![
                ("InstanceName", INSTANCE),
                ("PicContent", &content),
                ("Num", "101"),
            ],
            400,
            "OverflowMaxReturnNum",
        ),
        (
            "SearchImageByPic",
            vec![
                ("InstanceName", INSTANCE),
                ("PicContent", &content),
                ("Region", "5,1,0,10"),
            ],
            400,
            "InvalidRegion",
        ),
        (
            "SearchImageByName",
            vec![
                ("InstanceName", INSTANCE),
                ("ProductId", "x"),
                ("PicName", "y"),
            ],
            400,
            "PicNotExist",
        ),
        (
            "AddImage",
            vec![
                ("InstanceName", INSTANCE),
                ("ProductId", "x"),
                ("PicName", "y"),
                ("PicContent", &content),
                ("IntAttr", "x"),
            ],
            400,
            "InvalidIntAttr",
        ),
        (
            "AddImage",
            vec![
                ("InstanceName", INSTANCE),
                ("ProductId", "x"),
                ("PicName", "y"),
                ("PicContent", &content),
                ("CategoryId", "77"),
            ],
            400,
            "InvalidCategory",
        ),
        ("NoSuchAction", vec![], 404, "InvalidApi.NotFound"),
    ];
    for (action, params, status, code) in cases {
        let (got_status, reply) = server.call(action, &params);
        assert_eq!(
            (got_status, reply["Code"].as_str().unwrap_or("")),
            (status, code),
            "{action} {params:?}: {reply}"
        );
        assert!(reply["RequestId"].as_str().is_some_and(|r| r.len() == 36));
        assert!(!reply["Message"].as_str().unwrap_or("").is_empty());
    }
    // Still healthy after all of that.
    let (status, _) = server.call("Detail", &[("InstanceName", INSTANCE)]);
    assert_eq!(status, 200);
}

/// Garment silhouettes (a dress, a T-shirt, trousers) in a `w` x `h` box.
fn garment(shape: usize, x: u32, y: u32, w: u32, h: u32) -> bool {
    let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
    match shape {
        0 => (fx - 0.5).abs() < 0.15 + 0.35 * fy,
        1 => fy < 0.35 || (0.25..0.75).contains(&fx),
        _ => fy < 0.3 || !(0.45..=0.55).contains(&fx),
    }
}

/// A busy scene: pixel noise under 90 small rectangles of random colours.
fn busy_scene(seed: u64, w: u32, h: u32) -> image::RgbImage {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |n: u32| -> u32 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % u64::from(n)) as u32
    };
    let mut img = image::RgbImage::from_fn(w, h, |_, _| {
        image::Rgb([next(256) as u8, next(256) as u8, next(256) as u8])
    });
    for _ in 0..90 {
        let (x0, y0, rw, rh) = (next(w), next(h), 4 + next(w / 10), 4 + next(h / 10));
        let c = image::Rgb([next(256) as u8, next(256) as u8, next(256) as u8]);
        for y in y0..(y0 + rh).min(h) {
            for x in x0..(x0 + rw).min(w) {
                img.put_pixel(x, y, c);
            }
        }
    }
    img
}

#[test]
fn scene_proposals_find_a_plain_garment_photographed_on_a_busy_scene() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--scene-proposals"]);
    let colours = [
        image::Rgb([230, 200, 40]),
        image::Rgb([40, 150, 70]),
        image::Rgb([200, 40, 50]),
        image::Rgb([40, 70, 190]),
    ];
    // The catalogue: every garment in every colour, on white.
    for shape in 0..3 {
        for (c, colour) in colours.iter().enumerate() {
            let shot = image::RgbImage::from_fn(220, 260, |x, y| {
                let (gx, gy) = (x.wrapping_sub(20), y.wrapping_sub(20));
                if gx < 180 && gy < 220 && garment(shape, gx, gy, 180, 220) {
                    *colour
                } else {
                    image::Rgb([255, 255, 255])
                }
            });
            server.add_image(
                INSTANCE,
                &format!("g{shape}-{c}"),
                &format!("{shape}-{c}.jpg"),
                &common::encode(&shot, image::ImageFormat::Jpeg),
                &[],
            );
        }
    }
    // The green T-shirt, 200 pixels tall, on a busy scene; SearchImageByPic crops by
    // default, the scene is busy, so the server searches its segment proposals too.
    let mut scene = busy_scene(5, 512, 400);
    let (x0, y0) = (180, 120);
    for y in 0..200 {
        for x in 0..164 {
            if garment(1, x, y, 164, 200) {
                scene.put_pixel(x0 + x, y0 + y, colours[1]);
            }
        }
    }
    let content = b64(&common::encode(&scene, image::ImageFormat::Jpeg));
    let (status, reply) = server.call(
        "SearchImageByPic",
        &[("InstanceName", INSTANCE), ("PicContent", &content)],
    );
    assert_eq!(status, 200, "{reply}");
    let hits = auctions(&reply);
    assert_eq!(hits.first().map(|h| h.0.as_str()), Some("g1-1"), "{reply}");
    // The reported Region is the proposal that found it: the garment's box.
    let region: Vec<u32> = reply["PicInfo"]["Region"]
        .as_str()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    let (x1, x2, y1, y2) = (region[0], region[1], region[2], region[3]);
    let shared = (x2.min(x0 + 164).saturating_sub(x1.max(x0)))
        * (y2.min(y0 + 200).saturating_sub(y1.max(y0)));
    assert!(shared * 10 >= 164 * 200 * 8, "{reply}");
    assert!((x2 - x1) * (y2 - y1) * 10 <= 164 * 200 * 13, "{reply}");
}
