//! The TLS side of the accept loop: handshakes run on their own tasks with a deadline,
//! so a slow or failing client never holds up the accept loop or another connection. A
//! plain-HTTP request sent to the TLS port is answered with a vendor error in plain HTTP
//! (the client learns to use https) and the connection is closed.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::TlsConfig;
use crate::api::error::ApiError;
use crate::api::response;

/// Longest a client may take to complete its TLS handshake (or send its plain request).
const HANDSHAKE_TIME: Duration = Duration::from_secs(10);

/// Handshakes under way at once; past it the listener stops accepting until some end.
const MAX_HANDSHAKES: usize = 1024;

/// First byte of a TLS record carrying a handshake message (the ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A TCP listener whose connections are TLS sessions past their handshake.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl TlsListener {
    /// Serves TLS with `config` on an already bound listener.
    pub fn new(tcp: TcpListener, config: &TlsConfig) -> Self {
        TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(config.0.clone()),
            handshakes: JoinSet::new(),
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    // Cancel-safe, as axum requires: the pending handshakes live in `self`, not in
    // this future, and both branches' futures are cancel-safe.
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept(), if self.handshakes.len() < MAX_HANDSHAKES => {
                    match accepted {
                        Ok((stream, peer)) => {
                            self.handshakes.spawn(handshake(self.acceptor.clone(), stream, peer));
                        }
                        Err(e) => accept_failed(e).await,
                    }
                }
                Some(done) = self.handshakes.join_next() => {
                    if let Ok(Some(session)) = done {
                        return session;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Like axum's own accept loop: a client that gave up is nothing; running out of file
/// descriptors is waited out rather than spun on.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Completes one client's handshake; `None` when it failed (logged) or was plain HTTP.
async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<(TlsStream<TcpStream>, SocketAddr)> {
    let outcome = tokio::time::timeout(HANDSHAKE_TIME, async {
        let mut first = [0u8; 1];
        if stream.peek(&mut first).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the handshake",
            ));
        }
        if first[0] != TLS_HANDSHAKE_RECORD {
            refuse_plain_http(stream).await?;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "plain HTTP sent to the TLS port (answered 400)",
            ));
        }
        acceptor.accept(stream).await
    })
    .await;
    match outcome {
        Ok(Ok(tls)) => Some((tls, peer)),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// Answers a plain-HTTP request with a vendor error saying to use https, then closes.
/// The request is read first: closing with unread data makes the kernel reset the
/// connection, and the client would see a transport error instead of the reply.
async fn refuse_plain_http(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 64 * 1024 {
        let n = read_some(&stream, &mut buf).await?;
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    write_all(&stream, &plain_http_reply().await).await?;
    std::future::poll_fn(|cx| {
        tokio::io::AsyncWrite::poll_shutdown(std::pin::Pin::new(&mut stream), cx)
    })
    .await?;
    // Let a body still arriving drain, briefly, so the reply is not reset away.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while read_some(&stream, &mut buf).await.is_ok_and(|n| n > 0) {}
    })
    .await;
    Ok(())
}

// Readiness and `try_*` rather than tokio's `io-util` extension traits: that feature
// would rebuild tokio and everything above it for two calls.
async fn read_some(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        stream.readable().await?;
        match stream.try_read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            done => return done,
        }
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The bytes of the vendor's 400 envelope, as an HTTP/1.1 response that closes.
async fn plain_http_reply() -> Vec<u8> {
    let error = ApiError::bad_request(
        "this port serves HTTPS only: send the request with https:// (protocol='https' in the SDKs)",
    );
    let (parts, body) = response::failure(&error, &response::new_request_id()).into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_LENGTH && name != axum::http::header::CONNECTION {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_http_reply_is_a_closing_vendor_error() {
        let reply = String::from_utf8(plain_http_reply().await).unwrap();
        let (head, body) = reply.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("connection: close"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["Code"], "BadRequest");
        assert!(json["Message"].as_str().unwrap().contains("https://"));
    }
}
