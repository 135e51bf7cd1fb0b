//! The server processes the load tool measures, imgsearch's and the peer's: a guard that
//! stops them when the run ends, and their resident memory and CPU time read from `/proc`
//! (CPU per request is the figure that still compares on a shared, noisy machine).

use std::process::Child;

/// Kills the server when the benchmark ends, errors included.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The resident memory of process `pid` in MB (VmRSS), NaN when unreadable.
pub fn resident_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb / 1024.0)
        })
        .unwrap_or(f64::NAN)
}

/// The CPU time process `pid` has used so far (user + system), in seconds; NaN when
/// unreadable.
pub fn cpu_seconds(pid: u32) -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name (which may hold spaces), from the 3rd on:
            // utime and stime are the 14th and 15th.
            let rest = &stat[stat.rfind(')')? + 2..];
            let mut fields = rest.split_whitespace().skip(11);
            let user: f64 = fields.next()?.parse().ok()?;
            let system: f64 = fields.next()?.parse().ok()?;
            Some((user + system) / ticks)
        })
        .unwrap_or(f64::NAN)
}

/// Process `pid`'s CPU milliseconds per request since it had used `since` seconds.
pub fn cpu_ms_per(pid: u32, since: f64, requests: usize) -> f64 {
    (cpu_seconds(pid) - since) * 1e3 / requests.max(1) as f64
}
