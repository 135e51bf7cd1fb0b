//! The CLI's online mode: talk to a running server instead of opening its data directory.
//!
//! [`discovery`] finds the server of a data directory (pid file naming a live process
//! plus the address file it writes). [`Client`] posts form parameters to a route (`/`
//! with an Action, or an admin route), signed with RPC V1 when an access key is given
//! ([`crate::auth::sign_rpc_v1`], the signature the server verifies), and returns the
//! reply's fields or the vendor error. `DeniedRequest` (throttling) is retried after the
//! server's `x-acs-retry-after`, so bulk work paces itself to the server's limits. An
//! https server is verified against the public web roots, or only against the PEM file
//! of `--tls-ca` ([`Client::trusting`]) for a private CA or a self-signed certificate.

pub mod commands;
pub mod discovery;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use serde_json::{Map, Value};

use crate::api::VendorCode;
use crate::auth::{form_body, sign_rpc_v1, SigningKey};

/// How long a call may take: creating an instance loads a model, whitening fits and
/// rebuilds; both run on the server before it answers.
const CALL_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Retries of a throttled call before its DeniedRequest is returned.
const THROTTLE_RETRIES: u32 = 200;

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the connection broke.
    #[error("cannot reach the server at {url}: {reason}")]
    Unreachable {
        /// The server's base URL.
        url: String,
        /// What the transport said.
        reason: String,
    },
    /// The server answered with a vendor error.
    #[error("{code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Vendor error code (e.g. `InvalidInstance`).
        code: String,
        /// The server's message.
        message: String,
    },
    /// The CA file of `--tls-ca` cannot be used.
    #[error("cannot use {} as the CA to trust: {reason}", path.display())]
    Ca {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The reply was not the JSON envelope expected.
    #[error("unexpected reply from {url}: {reason}")]
    BadReply {
        /// The route called.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

impl ClientError {
    /// The vendor code of a refusal (`None` for transport and reply errors).
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A client of one server.
#[derive(Clone)]
pub struct Client {
    base: String,
    key: Option<SigningKey>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("signed", &self.key.is_some())
            .finish()
    }
}

impl Client {
    /// A client of the server at `base` (`http://127.0.0.1:8080`), signing with `key`.
    pub fn new(base: &str, key: Option<SigningKey>) -> Self {
        let agent = agent_builder().build();
        Client {
            base: base.trim_end_matches('/').to_string(),
            key,
            agent,
        }
    }

    /// The same client verifying https servers against the certificates of the PEM file
    /// `ca` only (a private CA, or the server's own self-signed certificate).
    pub fn trusting(mut self, ca: &Path) -> Result<Self, ClientError> {
        let fail = |reason: String| ClientError::Ca {
            path: ca.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(ca).map_err(|e| fail(e.to_string()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&bytes) {
            let cert = cert.map_err(|e| fail(e.to_string()))?;
            roots.add(cert).map_err(|e| fail(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(fail("it holds no PEM certificate".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        self.agent = agent_builder().tls_config(Arc::new(config)).build();
        Ok(self)
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Calls an Action of the API (`POST /` with `Action`).
    pub fn action(
        &self,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<Map<String, Value>, ClientError> {
        let mut all = vec![("Action", action)];
        all.extend_from_slice(params);
        self.call("/", &all)
    }

    /// Posts `params` as a form to `path`; the reply's fields on success. A throttled
    /// call (`DeniedRequest`) waits as the server asks and is sent again.
    pub fn call(
        &self,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<Map<String, Value>, ClientError> {
        let mut tries = 0;
        loop {
            match self.call_once(path, params) {
                Err((ClientError::Refused { code, .. }, Some(wait)))
                    if code == VendorCode::DeniedRequest.as_str() && tries < THROTTLE_RETRIES =>
                {
                    tries += 1;
                    std::thread::sleep(wait.min(Duration::from_secs(5)));
                }
                other => return other.map_err(|(e, _)| e),
            }
        }
    }

    /// One attempt; on a refusal also the wait the server asked for.
    fn call_once(
        &self,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<Map<String, Value>, (ClientError, Option<Duration>)> {
        let pairs: Vec<(String, String)> = match &self.key {
            // A fresh nonce and timestamp per attempt: a retry is a new request.
            Some(key) => sign_rpc_v1(
                key,
                path,
                params,
                SystemTime::now(),
                &uuid::Uuid::new_v4().to_string(),
            ),
            None => params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let url = format!("{}{path}", self.base);
        let sent = self
            .agent
            .post(&url)
            .set("content-type", "application/x-www-form-urlencoded")
            .send_string(&form_body(&pairs));
        let (status, wait, text) = match sent {
            Ok(response) => (response.status(), None, response.into_string()),
            Err(ureq::Error::Status(status, response)) => {
                let wait = response
                    .header("x-acs-retry-after")
                    .and_then(|ms| ms.parse::<u64>().ok())
                    .map(Duration::from_millis);
                (status, wait, response.into_string())
            }
            Err(e) => {
                let mut reason = e.to_string();
                if reason.contains("invalid peer certificate") {
                    reason.push_str(
                        " (trust the server's CA with --tls-ca FILE; the certificate must name \
                         the URL's host, which --server can give)",
                    );
                }
                let e = ClientError::Unreachable {
                    url: self.base.clone(),
                    reason,
                };
                return Err((e, None));
            }
        };
        let bad = |reason: String| ClientError::BadReply {
            url: url.clone(),
            reason,
        };
        let text = text.map_err(|e| (bad(e.to_string()), None))?;
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&text) else {
            let start: String = text.chars().take(200).collect();
            return Err((
                bad(format!("HTTP {status}, not a JSON object: {start}")),
                None,
            ));
        };
        if status == 200 && fields.get("Success") != Some(&Value::Bool(false)) {
            return Ok(fields);
        }
        let text_of = |name: &str| {
            fields
                .get(name)
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .unwrap_or_default()
        };
        let e = ClientError::Refused {
            status,
            code: text_of("Code"),
            message: text_of("Message"),
        };
        Err((e, wait))
    }
}

fn agent_builder() -> ureq::AgentBuilder {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout(CALL_TIMEOUT)
}
