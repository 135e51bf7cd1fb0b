//! HTTPS for `serve --tls-cert FILE --tls-key FILE`: the PEM files are loaded into a
//! rustls configuration here (ring provider: aws-lc-rs would need cmake to build), and
//! [`TlsListener`] hands axum only connections whose TLS handshake has completed.

mod listener;

pub use listener::TlsListener;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// Why the certificate or key cannot be used; the server refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the TLS {what} {}: {source}", path.display())]
    Read {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not PEM, or holds nothing of the expected kind.
    #[error("{} holds no usable PEM {what} ({expected}): {detail}", path.display())]
    Pem {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The PEM sections accepted.
        expected: &'static str,
        /// What the parser said.
        detail: String,
    },
    /// The key is not the one the certificate was issued for.
    #[error("the TLS private key {} does not match the certificate {}", key.display(), cert.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the certificate or key (unsupported algorithm, damaged DER).
    #[error("the TLS certificate {} or key {} cannot be used: {source}", cert.display(), key.display())]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
}

/// A loaded certificate chain and key, ready to accept connections.
#[derive(Debug, Clone)]
pub struct TlsConfig(Arc<ServerConfig>);

impl TlsConfig {
    /// Loads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, RSA or
    /// EC), and checks that the key belongs to the leaf certificate.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let chain = read_chain(cert)?;
        let private_key = read_key(key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let rejected = |source| TlsError::Rejected {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            source,
        };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(rejected)?
            .with_no_client_auth()
            .with_single_cert(chain, private_key)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
                    cert: cert.to_path_buf(),
                    key: key.to_path_buf(),
                },
                other => rejected(other),
            })?;
        // The router speaks HTTP/1.1 only; saying so spares clients a failed h2 attempt.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig(Arc::new(config)))
    }
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    const EXPECTED: &str = "BEGIN CERTIFICATE sections, the server's first";
    let pem_error = |detail: String| TlsError::Pem {
        what: "certificate",
        path: path.to_path_buf(),
        expected: EXPECTED,
        detail,
    };
    let bytes = read_file("certificate", path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_error("no certificate found".into()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_file("private key", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        what: "private key",
        path: path.to_path_buf(),
        expected: "BEGIN PRIVATE KEY, BEGIN RSA PRIVATE KEY or BEGIN EC PRIVATE KEY",
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for 127.0.0.1 and its PKCS#8 key, as PEM.
    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn loads_a_matching_pair_and_refuses_the_rest_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_pem, key_pem) = self_signed();
        let (_, other_key_pem) = self_signed();
        let cert = write(dir.path(), "cert.pem", &cert_pem);
        let key = write(dir.path(), "key.pem", &key_pem);
        let other_key = write(dir.path(), "other.pem", &other_key_pem);
        let garbage = write(dir.path(), "garbage.pem", "not pem at all\n");
        let missing = dir.path().join("missing.pem");

        let config = TlsConfig::load(&cert, &key).expect("a matching pair loads");
        assert_eq!(config.0.alpn_protocols, vec![b"http/1.1".to_vec()]);

        let err = TlsConfig::load(&cert, &other_key).unwrap_err();
        assert!(matches!(err, TlsError::Mismatch { .. }), "{err:?}");
        assert!(err.to_string().contains("does not match"), "{err}");

        let err = TlsConfig::load(&missing, &key).unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Read {
                    what: "certificate",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("missing.pem"), "{err}");

        let err = TlsConfig::load(&garbage, &key).unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Pem {
                    what: "certificate",
                    ..
                }
            ),
            "{err:?}"
        );
        // The key given as the certificate and the certificate as the key.
        let err = TlsConfig::load(&key, &cert).unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Pem {
                    what: "certificate",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = TlsConfig::load(&cert, &cert).unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Pem {
                    what: "private key",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    /// RSA (PKCS#1) and EC (SEC1) keys as `openssl` writes them; skipped without it.
    #[test]
    fn loads_rsa_and_ec_keys_written_by_openssl() {
        let dir = tempfile::tempdir().unwrap();
        for (name, genkey) in [
            (
                "rsa",
                &["genrsa", "-traditional", "-out", "KEY", "2048"][..],
            ),
            (
                "ec",
                &[
                    "ecparam",
                    "-name",
                    "prime256v1",
                    "-genkey",
                    "-noout",
                    "-out",
                    "KEY",
                ][..],
            ),
        ] {
            let key = dir.path().join(format!("{name}.key"));
            let cert = dir.path().join(format!("{name}.crt"));
            let key_arg = key.to_str().unwrap();
            let cert_arg = cert.to_str().unwrap();
            let openssl = |args: &[&str]| {
                let args: Vec<&str> = args
                    .iter()
                    .map(|a| if *a == "KEY" { key_arg } else { a })
                    .collect();
                std::process::Command::new("openssl").args(&args).output()
            };
            let Ok(out) = openssl(genkey) else {
                eprintln!("SKIPPED: no openssl command");
                return;
            };
            assert!(out.status.success(), "{out:?}");
            let header = std::fs::read_to_string(&key).unwrap();
            let expected = if name == "rsa" {
                "RSA PRIVATE KEY"
            } else {
                "EC PRIVATE KEY"
            };
            assert!(header.contains(expected), "{header}");
            let req = [
                "req",
                "-new",
                "-x509",
                "-key",
                "KEY",
                "-subj",
                "/CN=127.0.0.1",
            ];
            let out = openssl(&[&req[..], &["-days", "2", "-out", cert_arg]].concat()).unwrap();
            assert!(out.status.success(), "{out:?}");
            TlsConfig::load(&cert, &key).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
