//! End-to-end checks of [`Verifier`] on the requests recorded from the real SDKs.
//!
//! Every style gets the same battery: the recording verifies; one changed body byte,
//! a wrong secret, an unknown key, a clock 16 minutes off, a reused nonce and a missing
//! signature all fail with the expected error. The property tests are in `proptests.rs`.

use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, HeaderValue};

use super::fixtures::*;
use super::*;

fn keys() -> AccessKeys {
    AccessKeys::single(KEY_ID, KEY_SECRET).unwrap()
}

pub(super) fn verifier() -> Verifier {
    Verifier::new(keys(), DEFAULT_MAX_SKEW)
}

/// Verifies `fixture` at `now` with a fresh verifier.
fn verify_with(fixture: &Fixture, keys: AccessKeys, now: SystemTime) -> Result<Principal> {
    let headers = fixture.header_map();
    let verifier = Verifier::new(keys, DEFAULT_MAX_SKEW);
    verifier.verify(&fixture.request(&headers, fixture.body.as_bytes()), now)
}

/// The body with one byte changed: `InstanceName=demo` becomes `InstanceName=demx`.
fn tampered_body(fixture: &Fixture) -> Vec<u8> {
    let mut body = fixture.body.as_bytes().to_vec();
    let at = fixture.body.find("InstanceName=demo").unwrap() + "InstanceName=dem".len();
    body[at] = b'x';
    body
}

/// The battery every style must pass. `body_error` is what a changed body yields.
fn standard_battery(
    fixture: &Fixture,
    at: SystemTime,
    style: SignatureStyle,
    body_error: AuthError,
) {
    let principal = verify_with(fixture, keys(), at).expect("the SDK's request verifies");
    assert_eq!(principal.access_key_id, KEY_ID);
    assert_eq!(principal.style, Some(style));
    assert!(principal.may_use("demo"));

    let headers = fixture.header_map();
    let body = tampered_body(fixture);
    let result = verifier().verify(&fixture.request(&headers, &body), at);
    assert_eq!(result, Err(body_error), "changed body");

    let wrong_secret = AccessKeys::single(KEY_ID, "not-the-secret").unwrap();
    assert_eq!(
        verify_with(fixture, wrong_secret, at),
        Err(AuthError::SignatureMismatch)
    );

    let other_key = AccessKeys::single("someone-else", KEY_SECRET).unwrap();
    assert_eq!(
        verify_with(fixture, other_key, at),
        Err(AuthError::UnknownKey(KEY_ID.into()))
    );

    let sixteen = Duration::from_secs(16 * 60);
    let fifteen = Duration::from_secs(15 * 60);
    for now in [at + sixteen, at - sixteen] {
        assert!(matches!(
            verify_with(fixture, keys(), now),
            Err(AuthError::Expired {
                max_skew_secs: 900,
                ..
            })
        ));
    }
    assert!(verify_with(fixture, keys(), at + fifteen).is_ok());
    assert!(verify_with(fixture, keys(), at - fifteen).is_ok());
}

/// The same request twice on one verifier: the second is a replay.
fn assert_replay_refused(fixture: &Fixture, at: SystemTime, nonce: &str) {
    let verifier = verifier();
    let headers = fixture.header_map();
    let req = fixture.request(&headers, fixture.body.as_bytes());
    assert!(verifier.verify(&req, at).is_ok());
    let later = at + Duration::from_secs(30);
    assert_eq!(
        verifier.verify(&req, later),
        Err(AuthError::NonceUsed(nonce.into()))
    );
}

/// `fixture` with its `Authorization` header removed verifies as [`AuthError::Missing`].
fn assert_unsigned_is_missing(fixture: &Fixture, at: SystemTime) {
    let mut headers = fixture.header_map();
    headers.remove("authorization");
    let result = verifier().verify(&fixture.request(&headers, fixture.body.as_bytes()), at);
    assert_eq!(result, Err(AuthError::Missing));
}

fn header(fixture: &Fixture, name: &str) -> &'static str {
    fixture
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
        .unwrap()
}

#[test]
fn acs3_battery() {
    for (fixture, at) in [(&ACS3_SEARCH, search_time()), (&ACS3_UPDATE, update_time())] {
        standard_battery(
            fixture,
            at,
            SignatureStyle::Acs3,
            AuthError::BodyHashMismatch("x-acs-content-sha256"),
        );
        assert_replay_refused(fixture, at, header(fixture, "x-acs-signature-nonce"));
        assert_unsigned_is_missing(fixture, at);
    }
}

#[test]
fn acs3_covers_query_and_headers() {
    let f = &ACS3_SEARCH;
    let at = search_time();
    let body = f.body.as_bytes();

    let query = Fixture {
        raw_query: Some("ScoreThreshold=0.10"),
        ..ACS3_SEARCH
    };
    let headers = f.header_map();
    let result = verifier().verify(&query.request(&headers, body), at);
    assert_eq!(result, Err(AuthError::SignatureMismatch), "changed query");

    let mut headers = f.header_map();
    headers.insert("x-acs-action", HeaderValue::from_static("AddImage"));
    let result = verifier().verify(&f.request(&headers, body), at);
    assert_eq!(result, Err(AuthError::SignatureMismatch), "changed action");

    let mut headers = f.header_map();
    headers.insert("x-acs-extra", HeaderValue::from_static("1"));
    let result = verifier().verify(&f.request(&headers, body), at);
    assert!(
        matches!(result, Err(AuthError::Malformed(_))),
        "unsigned x-acs header"
    );

    let mut headers = f.header_map();
    headers.remove("x-acs-date");
    let result = verifier().verify(&f.request(&headers, body), at);
    assert_eq!(result, Err(AuthError::MissingField("x-acs-date")));

    // Unsigned transport headers may change freely.
    let mut headers = f.header_map();
    headers.insert("content-length", HeaderValue::from_static("999"));
    headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
    assert!(verifier().verify(&f.request(&headers, body), at).is_ok());
}

#[test]
fn rpc_v1_battery() {
    for (fixture, at) in [
        (&RPC_V1_SEARCH, search_time()),
        (&RPC_V1_UPDATE, update_time()),
    ] {
        standard_battery(
            fixture,
            at,
            SignatureStyle::RpcV1,
            AuthError::SignatureMismatch,
        );
        let query = fixture.raw_query.unwrap();
        let nonce = query
            .split('&')
            .find_map(|p| p.strip_prefix("SignatureNonce="))
            .unwrap();
        assert_replay_refused(fixture, at, nonce);

        // Unsigned: the same query without its Signature parameter.
        let unsigned: Vec<&str> = query
            .split('&')
            .filter(|p| !p.starts_with("Signature="))
            .collect();
        let unsigned = unsigned.join("&");
        let headers = fixture.header_map();
        let req = RequestToVerify {
            raw_query: Some(&unsigned),
            ..fixture.request(&headers, fixture.body.as_bytes())
        };
        assert_eq!(verifier().verify(&req, at), Err(AuthError::Missing));
    }
}

#[test]
fn rpc_v1_signature_may_travel_in_the_body() {
    let f = &RPC_V1_SEARCH;
    let query = f.raw_query.unwrap();
    let (rest, signature): (Vec<&str>, Vec<&str>) =
        query.split('&').partition(|p| !p.starts_with("Signature="));
    let rest = rest.join("&");
    let body = format!("{}&{}", f.body, signature[0]);
    let headers = f.header_map();
    let req = RequestToVerify {
        raw_query: Some(&rest),
        ..f.request(&headers, body.as_bytes())
    };
    assert!(verifier().verify(&req, search_time()).is_ok());

    // The path is signed too, so the request cannot be moved to another route.
    let moved = Fixture {
        path: "/v2/image/search",
        ..RPC_V1_SEARCH
    };
    let req = moved.request(&headers, f.body.as_bytes());
    assert_eq!(
        verifier().verify(&req, search_time()),
        Err(AuthError::SignatureMismatch)
    );

    // A parameter repeated with another value is refused, not silently resolved.
    let conflicting = format!("{}&InstanceName=other", f.body);
    let req = f.request(&headers, conflicting.as_bytes());
    assert!(matches!(
        verifier().verify(&req, search_time()),
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn roa_battery() {
    for (fixture, at) in [
        (&ROA_SEARCH, search_time()),
        (&ROA_ADD_WITH_NONCE, roa_add_time()),
    ] {
        standard_battery(
            fixture,
            at,
            SignatureStyle::Roa,
            AuthError::BodyHashMismatch("Content-MD5"),
        );
        assert_unsigned_is_missing(fixture, at);
    }
    assert_replay_refused(
        &ROA_ADD_WITH_NONCE,
        roa_add_time(),
        "6a1f3c0e-roa-nonce-0001",
    );

    // Without a nonce (as the SDK sends it) a repeat within the window is accepted.
    let verifier = verifier();
    let headers = ROA_SEARCH.header_map();
    let req = ROA_SEARCH.request(&headers, ROA_SEARCH.body.as_bytes());
    assert!(verifier.verify(&req, search_time()).is_ok());
    assert!(verifier.verify(&req, search_time()).is_ok());
}

#[test]
fn roa_covers_content_md5_query_and_path() {
    let f = &ROA_SEARCH;
    let at = search_time();
    let body = f.body.as_bytes();

    let mut headers = f.header_map();
    headers.remove("content-md5");
    let result = verifier().verify(&f.request(&headers, body), at);
    assert_eq!(result, Err(AuthError::MissingField("Content-MD5")));

    let headers = f.header_map();
    let moved = Fixture {
        path: "/v2/image/delete",
        ..ROA_SEARCH
    };
    let result = verifier().verify(&moved.request(&headers, body), at);
    assert_eq!(result, Err(AuthError::SignatureMismatch), "changed path");

    let query = Fixture {
        raw_query: Some("RegionId=cn-hangzhou"),
        ..ROA_SEARCH
    };
    let result = verifier().verify(&query.request(&headers, body), at);
    assert_eq!(result, Err(AuthError::SignatureMismatch), "changed query");
}

#[test]
fn detection_and_malformed_headers() {
    let headers = HeaderMap::new();
    let bare = RequestToVerify {
        method: "POST",
        path: "/",
        raw_query: None,
        headers: &headers,
        body: b"",
    };
    assert_eq!(SignatureStyle::detect(&bare), Err(AuthError::Missing));
    assert_eq!(
        verifier().verify(&bare, search_time()),
        Err(AuthError::Missing)
    );

    for value in [
        "Bearer abc",
        "ACS3-HMAC-SM3 Credential=a",
        "acs nocolon",
        "acs :sig",
    ] {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_str(value).unwrap());
        let req = RequestToVerify {
            headers: &headers,
            ..bare
        };
        let result = verifier().verify(&req, search_time());
        assert!(
            matches!(
                result,
                Err(AuthError::Malformed(_) | AuthError::MissingField(_))
            ),
            "{value}: {result:?}"
        );
    }
}

#[test]
fn verifier_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Verifier>();
    assert_send_sync::<Principal>();
}

#[test]
fn limited_keys_reach_the_principal() {
    let keys =
        AccessKeys::from_list([AccessKey::new(KEY_ID, KEY_SECRET).limited_to(["demo"])]).unwrap();
    let principal = verify_with(&ACS3_SEARCH, keys, search_time()).unwrap();
    assert!(principal.may_use("demo"));
    assert!(matches!(
        principal.check_instance("other"),
        Err(AuthError::Forbidden { .. })
    ));
}
