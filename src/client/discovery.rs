//! Finding the server of a data directory: the server records its process id
//! ([`PID_FILE`]) and its base URL ([`ADDR_FILE`]) there; the CLI talks to it when the
//! process is alive and the address is recorded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::config::{ADDR_FILE, PID_FILE};

/// The base URL a client on this machine uses for a server listening on `listen`: an
/// unspecified address (`0.0.0.0`, `::`) is reached on loopback.
pub fn base_url(scheme: &str, listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("{scheme}://{}", SocketAddr::new(ip, listen.port()))
}

/// Writes the address file (one line, the base URL) beside the pid file; replaced
/// atomically so a reader never sees half a line.
pub fn write_addr_file(
    data_dir: &Path,
    scheme: &str,
    listen: SocketAddr,
) -> std::io::Result<PathBuf> {
    let path = data_dir.join(ADDR_FILE);
    let tmp = data_dir.join(format!("{ADDR_FILE}.tmp"));
    std::fs::write(&tmp, format!("{}\n", base_url(scheme, listen)))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Whether a process of that id runs (signal 0 checks without sending anything).
fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 has no effect beyond the permission check.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The base URL of the server running on `data_dir`: its pid file names a live process
/// and its address file exists. `None` otherwise (the CLI then works offline).
pub fn running_server(data_dir: &Path) -> Option<String> {
    let pid: i32 = std::fs::read_to_string(data_dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if !alive(pid) {
        return None;
    }
    let url = std::fs::read_to_string(data_dir.join(ADDR_FILE)).ok()?;
    let url = url.trim();
    (!url.is_empty()).then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_become_loopback() {
        assert_eq!(
            base_url("http", "0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            base_url("https", "[::]:443".parse().unwrap()),
            "https://[::1]:443"
        );
        assert_eq!(
            base_url("http", "10.1.2.3:9".parse().unwrap()),
            "http://10.1.2.3:9"
        );
    }

    #[test]
    fn a_server_is_found_only_with_a_live_pid_and_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        assert_eq!(running_server(data), None);
        write_addr_file(data, "http", "0.0.0.0:1234".parse().unwrap()).unwrap();
        assert_eq!(running_server(data), None, "no pid file");
        std::fs::write(data.join(PID_FILE), std::process::id().to_string()).unwrap();
        assert_eq!(
            running_server(data).as_deref(),
            Some("http://127.0.0.1:1234")
        );
        // A pid no process has (beyond the kernel's pid_max).
        std::fs::write(data.join(PID_FILE), "2147483647").unwrap();
        assert_eq!(running_server(data), None, "dead process");
        std::fs::write(data.join(PID_FILE), std::process::id().to_string()).unwrap();
        std::fs::remove_file(data.join(ADDR_FILE)).unwrap();
        assert_eq!(running_server(data), None, "no address");
    }
}
