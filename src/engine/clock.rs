//! The wall clock in the one unit the engine stores: milliseconds since the Unix epoch
//! (task times, instance creation, snapshot names). A module of its own so that
//! `registry.rs`, `tasks/` and `snapshot/` can all read it without importing each other.

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
