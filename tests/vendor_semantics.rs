//! The vendor's semantics over real HTTP: filters applied in the scan, paging,
//! DistinctProductId, ScoreThreshold, categories, UpdateImage, CheckImageExists,
//! CompareSimilarByImage, SearchImageByFilter, delete by filter, and throttling.

mod common;

use common::{auctions, b64, output_text, picture, run_cli, Server};
use serde_json::Value;

const INSTANCE: &str = "demoinstance";

/// Adds picture `seed` as product `p{seed / 2}` (two pictures per product) with
/// IntAttr = seed and StrAttr = "even"/"odd".
fn add(server: &Server, seed: u64, category: Option<&str>) {
    let (product, name, content) = (
        format!("p{}", seed / 2),
        format!("{seed}.png"),
        b64(&picture(seed)),
    );
    let (int_attr, str_attr) = (
        seed.to_string(),
        if seed.is_multiple_of(2) {
            "even"
        } else {
            "odd"
        },
    );
    let mut params = vec![
        ("InstanceName", INSTANCE),
        ("ProductId", product.as_str()),
        ("PicName", name.as_str()),
        ("PicContent", content.as_str()),
        ("IntAttr", int_attr.as_str()),
        ("StrAttr", str_attr),
    ];
    if let Some(c) = category {
        params.push(("CategoryId", c));
    }
    let (status, reply) = server.call("AddImage", &params);
    assert_eq!(status, 200, "{reply}");
}

fn search(server: &Server, seed: u64, extra: &[(&str, &str)]) -> Value {
    let content = b64(&picture(seed));
    let mut params = vec![("InstanceName", INSTANCE), ("PicContent", content.as_str())];
    params.extend_from_slice(extra);
    let (status, reply) = server.call("SearchImageByPic", &params);
    assert_eq!(status, 200, "{reply}");
    reply
}

#[test]
fn filters_paging_distinct_threshold_update_and_filter_actions() {
    let dir = tempfile::tempdir().unwrap();
    // Paging is checked on the vector ranking alone: the proposals' extra views are
    // each searched only as deep as the page reaches.
    let server = Server::start_with(&dir.path().join("data"), &["--scene-proposals", "false"]);
    for seed in 0..20 {
        add(&server, seed, None);
    }

    // A filter runs inside the scan: every result matches and DocsFound counts matches.
    let reply = search(
        &server,
        4,
        &[
            ("Filter", "int_attr>=10 AND str_attr=\"even\""),
            ("Num", "20"),
        ],
    );
    let hits = auctions(&reply);
    assert_eq!(hits.len(), 5, "{reply}");
    assert_eq!(reply["Head"]["DocsFound"], 5);
    for a in reply["Auctions"].as_array().unwrap() {
        assert!(
            a["IntAttr"].as_i64().unwrap() >= 10 && a["StrAttr"] == "even",
            "{a}"
        );
    }
    let reply = search(
        &server,
        4,
        &[
            ("Filter", "int_attr in (1, 2, 3) OR str_attr=\"none\""),
            ("Num", "20"),
        ],
    );
    let names: Vec<String> = auctions(&reply).into_iter().map(|a| a.1).collect();
    assert_eq!(names.len(), 3);
    assert!(names
        .iter()
        .all(|n| ["1.png", "2.png", "3.png"].contains(&n.as_str())));
    let (status, bad) = server.call(
        "SearchImageByPic",
        &[
            ("InstanceName", INSTANCE),
            ("PicContent", &b64(&picture(4))),
            ("Filter", "int_attr >> 3"),
        ],
    );
    assert_eq!(
        (status, bad["Code"].as_str()),
        (400, Some("InvalidFilterClause")),
        "{bad}"
    );
    assert!(
        bad["Message"].as_str().unwrap().contains("character"),
        "{bad}"
    );

    // Paging: Start skips, scores never rise, DocsReturn counts the page.
    let all = auctions(&search(&server, 4, &[("Num", "20")]));
    assert_eq!(all.len(), 20);
    assert!(all.windows(2).all(|w| w[0].2 >= w[1].2));
    let page = search(&server, 4, &[("Num", "5"), ("Start", "5")]);
    assert_eq!(auctions(&page), all[5..10].to_vec());
    assert_eq!(page["Head"]["DocsReturn"], 5);
    assert_eq!(page["Head"]["DocsFound"], 20);

    // DistinctProductId: one picture per product, the best one.
    let distinct = auctions(&search(
        &server,
        4,
        &[("Num", "20"), ("DistinctProductId", "True")],
    ));
    let products: std::collections::HashSet<_> = distinct.iter().map(|a| a.0.clone()).collect();
    assert_eq!(distinct.len(), 10);
    assert_eq!(products.len(), 10);
    assert_eq!(distinct[0].1, "4.png");

    // ScoreThreshold: nothing below it.
    let strict = auctions(&search(
        &server,
        4,
        &[("Num", "20"), ("ScoreThreshold", "0.999")],
    ));
    assert_eq!(strict.len(), 1);

    // UpdateImage changes attributes in the store and in the filter columns.
    let (status, reply) = server.call(
        "UpdateImage",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", "p2"),
            ("PicName", "4.png"),
            ("IntAttr", "1000"),
            ("StrAttr2", "new"),
        ],
    );
    assert_eq!(status, 200, "{reply}");
    let reply = search(
        &server,
        4,
        &[("Filter", "int_attr=1000 AND str_attr2=\"new\"")],
    );
    assert_eq!(auctions(&reply).len(), 1, "{reply}");
    assert_eq!(
        reply["Auctions"][0]["StrAttr"], "even",
        "untouched attributes stay"
    );
    let (status, reply) = server.call(
        "UpdateImage",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", "p2"),
            ("PicName", "nope.png"),
        ],
    );
    assert_eq!((status, reply["Code"].as_str()), (400, Some("PicNotExist")));

    // CheckImageExists.
    let (_, exists) = server.call(
        "CheckImageExists",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", "p2"),
            ("PicName", "4.png"),
        ],
    );
    assert_eq!(exists["Exists"], true, "{exists}");
    assert_eq!(exists["Auctions"]["IntAttr"], 1000);
    let (_, missing) = server.call(
        "CheckImageExists",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", "p2"),
            ("PicName", "x"),
        ],
    );
    assert_eq!(missing["Exists"], false);

    // CompareSimilarByImage: identical is 1, different is less.
    let (a, b) = (b64(&picture(1)), b64(&picture(2)));
    let (_, same) = server.call(
        "CompareSimilarByImage",
        &[
            ("InstanceName", INSTANCE),
            ("PrimaryPicContent", &a),
            ("SecondaryPicContent", &a),
        ],
    );
    let (_, other) = server.call(
        "CompareSimilarByImage",
        &[
            ("InstanceName", INSTANCE),
            ("PrimaryPicContent", &a),
            ("SecondaryPicContent", &b),
        ],
    );
    assert_eq!(same["Score"].as_f64(), Some(1.0), "{same}");
    assert!(other["Score"].as_f64().unwrap() < 0.99, "{other}");

    // SearchImageByFilter lists matches oldest first, without Score.
    let (status, listed) = server.call(
        "SearchImageByFilter",
        &[
            ("InstanceName", INSTANCE),
            ("Filter", "str_attr=\"odd\""),
            ("Num", "3"),
            ("Start", "1"),
        ],
    );
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["Head"]["DocsFound"], 10);
    let names: Vec<&str> = listed["Auctions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["PicName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["3.png", "5.png", "7.png"]);
    assert!(listed["Auctions"][0].get("Score").is_none());

    // DeleteImage by filter removes exactly the matches.
    let (status, deleted) = server.call(
        "DeleteImage",
        &[
            ("InstanceName", INSTANCE),
            ("IsDeleteByFilter", "true"),
            ("Filter", "int_attr<4"),
        ],
    );
    assert_eq!(status, 200, "{deleted}");
    let mut names: Vec<String> = deleted["Data"]["PicNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["0.png", "1.png", "2.png", "3.png"]);
    let (_, detail) = server.call("Detail", &[("InstanceName", INSTANCE)]);
    assert_eq!(detail["Instance"]["TotalCount"], 16);
}

#[test]
fn product_instances_search_within_the_category() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    add(&server, 1, Some("3"));
    add(&server, 2, Some("4"));
    let reply = search(&server, 1, &[("CategoryId", "4")]);
    let hits = auctions(&reply);
    assert_eq!(hits.len(), 1, "{reply}");
    assert_eq!(hits[0].1, "2.png");
    assert_eq!(reply["PicInfo"]["CategoryId"], 4);
    // Predicted from the nearest pictures when omitted.
    let reply = search(&server, 1, &[]);
    assert_eq!(reply["PicInfo"]["CategoryId"], 3, "{reply}");
    assert_eq!(auctions(&reply)[0].1, "1.png");
    let (status, bad) = server.call(
        "SearchImageByPic",
        &[
            ("InstanceName", INSTANCE),
            ("PicContent", &b64(&picture(1))),
            ("CategoryId", "10"),
        ],
    );
    assert_eq!(
        (status, bad["Code"].as_str()),
        (400, Some("InvalidCategory"))
    );
}

/// A fresh server (no flags) takes bursts of searches and writes to `demoinstance` without
/// a refusal: the vendor's per-instance tiers are not imposed on a self-hosted server.
#[test]
fn searches_and_writes_are_unlimited_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    // Instances are unlimited by default: one created with the vendor's 10 QPS tier.
    let created = ureq::post(&format!("http://{}/admin/instance/create", server.addr))
        .send_form(&[("InstanceName", "tier10"), ("Qps", "10")])
        .map(|r| r.status());
    assert_eq!(created.ok(), Some(200));
    let content = b64(&picture(1));
    let url = format!("http://{}/", server.addr);
    // Status of one raw request; the tests' usual client retries refusals, this one must not.
    let send = |action: &str, extra: &[(&str, &str)]| -> u16 {
        let mut form = vec![("Action", action), ("InstanceName", INSTANCE)];
        form.extend_from_slice(extra);
        match ureq::post(&url).send_form(&form) {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(status, _)) => status,
            Err(e) => panic!("{e}"),
        }
    };
    let product_of = |i: usize| format!("p{i}");
    let pic_of = |i: usize| format!("{i}.png");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|t| {
                let (send, content) = (&send, &content);
                s.spawn(move || {
                    let mut seen = Vec::new();
                    for i in 0..30 {
                        let n = t * 100 + i;
                        let (product, pic) = (product_of(n), pic_of(n));
                        if i % 3 == 0 {
                            seen.push(send(
                                "AddImage",
                                &[
                                    ("ProductId", &product),
                                    ("PicName", &pic),
                                    ("PicContent", content),
                                ],
                            ));
                        }
                        seen.push(send("SearchImageByPic", &[("PicContent", content)]));
                    }
                    seen
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(statuses.len(), 8 * 40);
    let refused = statuses.iter().filter(|&&s| s != 200).count();
    assert_eq!(refused, 0, "statuses: {statuses:?}");
}

#[test]
fn searches_over_the_instance_qps_are_denied_with_retry_after() {
    // The vendor's tiers are an opt-in emulation: an instance created with --qps 10.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The costly stages off: searches quick enough for 40 to arrive within a second.
    let out = run_cli(
        &data,
        &[
            "instance",
            "create",
            "tiered",
            "--qps",
            "10",
            "--local-features",
            "false",
        ],
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let server = Server::start_with(&data, &["--scene-proposals", "false"]);
    let content = b64(&picture(1));
    let url = format!("http://{}/?Action=SearchImageByPic", server.addr);
    let mut denied = None;
    for _ in 0..40 {
        match ureq::post(&url).send_form(&[("InstanceName", "tiered"), ("PicContent", &content)]) {
            Ok(_) => {}
            Err(ureq::Error::Status(status, r)) => {
                let retry = r.header("x-acs-retry-after").map(str::to_string);
                let body: Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
                denied = Some((
                    status,
                    body["Code"].as_str().unwrap_or("").to_string(),
                    retry,
                ));
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let (status, code, retry) = denied.expect("40 searches at once were never throttled at 10 QPS");
    assert_eq!((status, code.as_str()), (403, "DeniedRequest"));
    // Counted under the Action it refused.
    let metrics = ureq::get(&format!("http://{}/metrics", server.addr))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("imgsearch_requests_total")
                && l.contains("action=\"SearchImageByPic\"")
                && l.contains("code=\"DeniedRequest\"")),
        "{metrics}"
    );
    assert!(retry
        .and_then(|r| r.parse::<u64>().ok())
        .is_some_and(|ms| (1..=1000).contains(&ms)));
}

#[test]
fn roa_paths_add_search_delete() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let post = |path: &str, params: &[(&str, &str)]| -> (u16, Value) {
        let url = format!("http://{}{path}", server.addr);
        let (status, r) = match ureq::post(&url).send_form(params) {
            Ok(r) => (r.status(), r),
            Err(ureq::Error::Status(s, r)) => (s, r),
            Err(e) => panic!("{e}"),
        };
        (
            status,
            serde_json::from_str(&r.into_string().unwrap()).unwrap(),
        )
    };
    let content = b64(&picture(9));
    let (status, added) = post(
        "/v2/image/add",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", "r1"),
            ("PicName", "r1.png"),
            ("PicContent", &content),
        ],
    );
    assert_eq!(status, 200, "{added}");
    let (_, by_pic) = post(
        "/v2/image/search",
        &[
            ("InstanceName", INSTANCE),
            ("Type", "SearchByPic"),
            ("PicContent", &content),
        ],
    );
    assert_eq!(auctions(&by_pic)[0].1, "r1.png", "{by_pic}");
    let (_, by_name) = post(
        "/v2/image/search",
        &[
            ("InstanceName", INSTANCE),
            ("Type", "SearchByName"),
            ("ProductId", "r1"),
            ("PicName", "r1.png"),
        ],
    );
    assert_eq!(auctions(&by_name)[0].1, "r1.png", "{by_name}");
    let (status, bad) = post(
        "/v2/image/search",
        &[("InstanceName", INSTANCE), ("Type", "SearchByColour")],
    );
    assert_eq!((status, bad["Code"].as_str()), (400, Some("BadRequest")));
    let (status, deleted) = post(
        "/v2/image/delete",
        &[("InstanceName", INSTANCE), ("ProductId", "r1")],
    );
    assert_eq!(status, 200, "{deleted}");
    let (_, gone) = post(
        "/v2/image/search",
        &[("InstanceName", INSTANCE), ("PicContent", &content)],
    );
    assert!(auctions(&gone).is_empty(), "{gone}");
}
