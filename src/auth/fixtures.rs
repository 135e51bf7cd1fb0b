//! Requests recorded from the official Python SDKs, byte for byte.
//!
//! Recorded with a raw-socket HTTP server on 127.0.0.1 and
//! `Config(access_key_id='testid', access_key_secret='testsecret',
//! endpoint='127.0.0.1:PORT', protocol='http', region_id='cn-shanghai')` (new SDK) or
//! `AcsClient('testid', 'testsecret', 'cn-shanghai')` (core SDK, ROA). Tests verify them
//! at their own timestamp; the SDK clock of the recording machine was in 2026.
//!
//! Headers are kept in the order and spelling they arrived in; the HTTP library's
//! `Accept-Encoding`, `Connection` and `Content-Length` are included because a real
//! server sees them too (and they must not be required to be signed).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::RequestToVerify;

/// The key pair the fixtures were signed with.
pub(crate) const KEY_ID: &str = "testid";
/// The secret of [`KEY_ID`].
pub(crate) const KEY_SECRET: &str = "testsecret";

/// One recorded request.
pub(crate) struct Fixture {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) raw_query: Option<&'static str>,
    pub(crate) headers: &'static [(&'static str, &'static str)],
    pub(crate) body: &'static str,
}

impl Fixture {
    /// The recorded headers as a `HeaderMap`.
    pub(crate) fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in self.headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    /// The request, borrowing `headers` (from [`Fixture::header_map`]) and `body`.
    pub(crate) fn request<'a>(
        &'a self,
        headers: &'a HeaderMap,
        body: &'a [u8],
    ) -> RequestToVerify<'a> {
        RequestToVerify {
            method: self.method,
            path: self.path,
            raw_query: self.raw_query,
            headers,
            body,
        }
    }
}

/// 2026-11-24T19:17:54Z, when the `*_SEARCH` fixtures were signed.
pub(crate) fn search_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_547_874)
}

/// 2026-11-24T19:21:42Z, when the `*_UPDATE` fixtures were signed.
pub(crate) fn update_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_548_102)
}

/// alibabacloud_imagesearch20201214 4.4.0, default config: SearchImageByPic.
pub(crate) const ACS3_SEARCH: Fixture = Fixture {
    method: "POST",
    path: "/",
    raw_query: Some("ScoreThreshold=0.50"),
    headers: &[
        ("Accept-Encoding", "identity"),
        ("host", "127.0.0.1:18765"),
        ("x-acs-version", "2020-12-14"),
        ("x-acs-action", "SearchImageByPic"),
        ("user-agent", "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"),
        ("x-acs-date", "2026-11-24T19:17:54Z"),
        ("x-acs-signature-nonce", "d2183e2e6230a286b32c2f23d1c7ef45"),
        ("accept", "application/json"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-acs-content-sha256", "851138c309ab86f97adc56888a09b85da4fa347751927dfa5c38facc12321c2b"),
        ("x-acs-credentials-provider", "static_ak"),
        ("Authorization", "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=accept;content-type;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=f9b69d2a811b795545e5b92096f4ffc935841d9ca0b888337885e990aa1c353f"),
        ("Content-Length", "126"),
    ],
    body: "Crop=True&Filter=int_attr%3E%3D100+AND+str_attr%21%3D%22a+b%2A~%22&InstanceName=demo&Num=5&PicContent=aGVsbG8gd29ybGQ%2BPz8%2F",
};

/// alibabacloud_imagesearch20201214 4.4.0, signature_algorithm='v2': SearchImageByPic.
pub(crate) const RPC_V1_SEARCH: Fixture = Fixture {
    method: "POST",
    path: "/",
    raw_query: Some("Action=SearchImageByPic&Format=json&Version=2020-12-14&Timestamp=2026-11-24T19%3A17%3A54Z&SignatureNonce=b7a5164af9bb5a3caa7917aec6caa1bd&ScoreThreshold=0.50&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=testid&Signature=4nm%2BzrTsWObGpb82QJ8emCRiHiQ%3D"),
    headers: &[
        ("Accept-Encoding", "identity"),
        ("host", "127.0.0.1:18765"),
        ("x-acs-version", "2020-12-14"),
        ("x-acs-action", "SearchImageByPic"),
        ("user-agent", "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-acs-credentials-provider", "static_ak"),
        ("Content-Length", "126"),
    ],
    body: "Crop=True&Filter=int_attr%3E%3D100+AND+str_attr%21%3D%22a+b%2A~%22&InstanceName=demo&Num=5&PicContent=aGVsbG8gd29ybGQ%2BPz8%2F",
};

/// aliyun-python-sdk-core 2.16.1 + aliyun-python-sdk-imagesearch 2.0.0: SearchImageRequest.
pub(crate) const ROA_SEARCH: Fixture = Fixture {
    method: "POST",
    path: "/v2/image/search",
    raw_query: Some("RegionId=cn-shanghai"),
    headers: &[
        ("Host", "127.0.0.1:18765"),
        ("User-Agent", "AlibabaCloud (Linux 6.18.44-fc-v669;x86_64) Python/3.11.7 Core/2.16.1 python-requests/2.18.3"),
        ("Accept-Encoding", "identity"),
        ("Accept", "application/json"),
        ("Connection", "keep-alive"),
        ("x-acs-action", "SearchImage"),
        ("x-acs-version", "2019-03-25"),
        ("x-sdk-invoke-type", "normal"),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-MD5", "2NrRE3kT5Uj0SchPdqsXwg=="),
        ("x-acs-region-id", "cn-shanghai"),
        ("Date", "Tue, 24 Nov 2026 19:17:54 GMT"),
        ("x-acs-signature-method", "HMAC-SHA1"),
        ("x-acs-signature-version", "1.0"),
        ("Authorization", "acs testid:+rEB90+ItLtCm8qeRUmiADhFzyo="),
        ("x-sdk-client", "python/2.0.0"),
        ("Content-Length", "133"),
    ],
    body: "InstanceName=demo&PicContent=aGVsbG8gd29ybGQ%2BPz8%2F&Num=5&Type=SearchByPic&Filter=int_attr%3E%3D100+AND+str_attr%21%3D%22a+b%2A~%22",
};

/// alibabacloud_imagesearch20201214 4.4.0, default config: UpdateImage (non-ASCII, `+`, `*`, `/` in query and body).
pub(crate) const ACS3_UPDATE: Fixture = Fixture {
    method: "POST",
    path: "/",
    raw_query: Some("IntAttr3=-7&StrAttr3=x+y%2A~%2F%C3%A9%2B%26%3D"),
    headers: &[
        ("Accept-Encoding", "identity"),
        ("host", "127.0.0.1:18766"),
        ("x-acs-version", "2020-12-14"),
        ("x-acs-action", "UpdateImage"),
        ("user-agent", "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"),
        ("x-acs-date", "2026-11-24T19:21:42Z"),
        ("x-acs-signature-nonce", "42a8736fe863a1d3df9f0d59b5012fba"),
        ("accept", "application/json"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-acs-content-sha256", "698d12b07ab04056f4a40688e63375a61472ac35ab62b3ac2cd88c9ba410b08c"),
        ("x-acs-credentials-provider", "static_ak"),
        ("Authorization", "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=accept;content-type;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=c8cfc1bb05f60bff854640183fccec042bba0d77d91ba0c414b5955c84da4f30"),
        ("Content-Length", "87"),
    ],
    body: "CustomContent=%E4%B8%AD%E6%96%87+%26+more&InstanceName=demo&PicName=a.jpg&ProductId=p+1",
};

/// alibabacloud_imagesearch20201214 4.4.0, signature_algorithm='v2': UpdateImage.
pub(crate) const RPC_V1_UPDATE: Fixture = Fixture {
    method: "POST",
    path: "/",
    raw_query: Some("Action=UpdateImage&Format=json&Version=2020-12-14&Timestamp=2026-11-24T19%3A21%3A42Z&SignatureNonce=eb3936c4a9bb6b9f4749c7ad544d5914&IntAttr3=-7&StrAttr3=x+y%2A~%2F%C3%A9%2B%26%3D&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=testid&Signature=cdHxWQ1bPZV101KORt9fdN2GhMc%3D"),
    headers: &[
        ("Accept-Encoding", "identity"),
        ("host", "127.0.0.1:18766"),
        ("x-acs-version", "2020-12-14"),
        ("x-acs-action", "UpdateImage"),
        ("user-agent", "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-acs-credentials-provider", "static_ak"),
        ("Content-Length", "87"),
    ],
    body: "CustomContent=%E4%B8%AD%E6%96%87+%26+more&InstanceName=demo&PicName=a.jpg&ProductId=p+1",
};
/// aliyun-python-sdk-core 2.16.1: AddImageRequest with an extra query parameter and a
/// client-added `x-acs-signature-nonce` header (the SDK sends none by itself).
pub(crate) const ROA_ADD_WITH_NONCE: Fixture = Fixture {
    method: "POST",
    path: "/v2/image/add",
    raw_query: Some("Extra=x+y%2F%C3%A9&RegionId=cn-shanghai"),
    headers: &[
        ("Host", "127.0.0.1:18767"),
        ("User-Agent", "AlibabaCloud (Linux 6.18.44-fc-v669;x86_64) Python/3.11.7 Core/2.16.1 python-requests/2.18.3"),
        ("Accept-Encoding", "identity"),
        ("Accept", "application/json"),
        ("Connection", "keep-alive"),
        ("x-acs-action", "AddImage"),
        ("x-acs-version", "2019-03-25"),
        ("x-sdk-invoke-type", "normal"),
        ("x-acs-signature-nonce", "6a1f3c0e-roa-nonce-0001"),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-MD5", "UUZCxkiShCQ9AJuBYcPAoQ=="),
        ("x-acs-region-id", "cn-shanghai"),
        ("Date", "Tue, 24 Nov 2026 19:27:23 GMT"),
        ("x-acs-signature-method", "HMAC-SHA1"),
        ("x-acs-signature-version", "1.0"),
        ("Authorization", "acs testid:RQDOwbq3lRiEMbOgTNrwSEC+RcQ="),
        ("x-sdk-client", "python/2.0.0"),
        ("Content-Length", "123"),
    ],
    body: "InstanceName=demo&ProductId=p+1&PicName=a.jpg&PicContent=aGVsbG8gd29ybGQ%2BPz8%2F&CustomContent=%E4%B8%AD%E6%96%87+%26+more",
};

/// 2026-11-24T19:27:23Z, when [`ROA_ADD_WITH_NONCE`] was signed.
pub(crate) fn roa_add_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_548_443)
}
