//! Per-instance whitening through the real binary: `imgsearch index whiten` on a data
//! directory filled by `import`, a server on the result (every picture its own first hit,
//! also one added after the fit), the offline command refused while that server runs,
//! `/admin/whiten` removing it online, `imgsearch verify` passing at each step.

mod common;

use std::path::Path;

use common::{auctions, b64, encode, output_text as text, picture_rgb, run_cli as run, Server};
use image::ImageFormat;
use serde_json::Value;

const INSTANCE: &str = "demoinstance";
/// The "Others" category, which every picture of an instance that starts empty gets.
const OTHERS: &str = "88888888";
const PICTURES: u64 = 24;

fn png(seed: u64) -> Vec<u8> {
    encode(&picture_rgb(seed), ImageFormat::Png)
}

/// Each picture is the first result of a search by its own bytes, scored 1.
fn each_finds_itself(server: &Server, seeds: &[u64], when: &str) {
    for &seed in seeds {
        let content = b64(&png(seed));
        let (status, reply) = server.call(
            "SearchImageByPic",
            &[
                ("InstanceName", INSTANCE),
                ("PicContent", &content),
                ("CategoryId", OTHERS),
                ("Crop", "false"),
            ],
        );
        assert_eq!(status, 200, "{when}: {reply}");
        let hits = auctions(&reply);
        assert_eq!(hits[0].0, format!("p{seed}"), "{when}: {hits:?}");
        assert!(hits[0].2 > 0.999, "{when}: {hits:?}");
    }
}

fn verify_passes(data: &Path, when: &str) {
    let out = run(data, &["verify", INSTANCE]);
    assert!(out.status.success(), "{when}: {}", text(&out));
}

fn admin(server: &Server, query: &str) -> (u16, Value) {
    let url = format!("http://{}/admin/whiten?{query}", server.addr);
    let (status, response) = match ureq::post(&url).send_string("") {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(code, r)) => (code, r),
        Err(e) => panic!("{e}"),
    };
    let body = response.into_string().unwrap();
    (status, serde_json::from_str(&body).unwrap())
}

#[test]
fn offline_fit_serves_and_online_removal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pictures = dir.path().join("pictures");
    std::fs::create_dir_all(&pictures).unwrap();
    for seed in 0..PICTURES {
        std::fs::write(pictures.join(format!("p{seed}.png")), png(seed)).unwrap();
    }
    let out = run(&data, &["instance", "create", INSTANCE]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(
        &data,
        &[
            "import",
            INSTANCE,
            pictures.to_str().unwrap(),
            "--crop",
            "false",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));

    // A power out of range is refused before anything changes.
    let out = run(&data, &["index", "whiten", INSTANCE, "--power", "2"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("power"), "{}", text(&out));

    let out = run(
        &data,
        &[
            "index", "whiten", INSTANCE, "--dims", "16", "--power", "0.5",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.contains(&format!("fitted on {PICTURES} pictures")),
        "{said}"
    );
    assert!(said.contains("→ 16 dimensions"), "{said}");
    verify_passes(&data, "after the offline fit");
    let out = run(&data, &["instance", "list"]);
    assert!(text(&out).contains("whitened"), "{}", text(&out));

    let mut server = Server::start(&data);
    let seeds: Vec<u64> = (0..PICTURES).collect();
    each_finds_itself(&server, &seeds, "whitened");
    // A picture added after the fit goes through the same projection.
    let content = b64(&png(100));
    let (status, reply) = server.call(
        "AddImage",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", "p100"),
            ("PicName", "p100.png"),
            ("PicContent", &content),
            ("Crop", "false"),
        ],
    );
    assert_eq!(status, 200, "{reply}");
    let mut all = seeds.clone();
    all.push(100);
    each_finds_itself(&server, &all, "added after the fit");

    // Forced offline, the command refuses beside the server and says what to do instead.
    let out = run(&data, &["index", "whiten", INSTANCE, "--off", "--offline"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("/admin/whiten"), "{}", text(&out));
    each_finds_itself(&server, &all, "after the refusal");

    // The server removes it itself.
    let (status, reply) = admin(&server, &format!("InstanceName={INSTANCE}&Off=true"));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["Dimension"], 256, "{reply}");
    each_finds_itself(&server, &all, "unwhitened online");
    // And fits one again, checking its settings like the command does.
    let (status, reply) = admin(&server, &format!("InstanceName={INSTANCE}&Dims=0"));
    assert_eq!(status, 400, "{reply}");
    let (status, reply) = admin(&server, &format!("InstanceName={INSTANCE}&Dims=8&Power=1"));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["Dimension"], 8, "{reply}");
    assert_eq!(reply["FittedOn"], PICTURES + 1, "{reply}");
    each_finds_itself(&server, &all, "whitened online");
    verify_passes(&data, "beside the server");
    server.stop();

    let server = Server::start(&data);
    each_finds_itself(&server, &all, "after a restart");
}
