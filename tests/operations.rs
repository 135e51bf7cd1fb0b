//! Operations endpoints of a real server: health, readiness, Prometheus metrics.

mod common;

use common::{b64, picture, Server};

fn get(server: &Server, path: &str) -> (u16, String) {
    let url = format!("http://{}{path}", server.addr);
    match ureq::get(&url).call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn health_readiness_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    assert_eq!(get(&server, "/healthz"), (200, "ok".to_string()));
    assert_eq!(get(&server, "/readyz").0, 200);

    let content = b64(&picture(3));
    let add = [
        ("InstanceName", "demoinstance"),
        ("ProductId", "p"),
        ("PicName", "a"),
        ("PicContent", content.as_str()),
    ];
    assert_eq!(server.call("AddImage", &add).0, 200);
    assert_eq!(
        server
            .call(
                "SearchImageByPic",
                &[("InstanceName", "demoinstance"), ("PicContent", &content)]
            )
            .0,
        200
    );
    assert_eq!(server.call("Detail", &[("InstanceName", "nosuch")]).0, 400);
    assert_eq!(server.call("Made\"Up", &[]).0, 404);

    let (status, text) = get(&server, "/metrics");
    assert_eq!(status, 200);
    for needle in [
        r#"imgsearch_requests_total{action="AddImage",code="0"} 1"#,
        r#"imgsearch_requests_total{action="Detail",code="InvalidInstance"} 1"#,
        r#"imgsearch_requests_total{action="unknown",code="InvalidApi.NotFound"} 1"#,
        r#"imgsearch_pictures{instance="demoinstance"} 1"#,
        r#"imgsearch_stage_seconds_count{stage="decode"}"#,
        r#"imgsearch_stage_seconds_count{stage="extract"}"#,
        r#"imgsearch_stage_seconds_count{stage="scan"}"#,
        "imgsearch_request_seconds",
        "imgsearch_index_bytes",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}
