//! Request timestamps and the allowed clock skew.
//!
//! RPC V1 (`Timestamp`) and ACS3 (`x-acs-date`) use ISO 8601 in UTC,
//! `YYYY-MM-DDThh:mm:ssZ`; ROA uses the HTTP `Date` header (RFC 1123,
//! `Tue, 24 Nov 2026 19:17:54 GMT`). A request is accepted while its timestamp is
//! within `max_skew` of the server clock in either direction.
//!
//! All arithmetic is done on signed unix seconds (`i64`/`i128`) rather than on
//! `SystemTime`, whose addition can panic on overflow: the timestamp comes from an
//! untrusted client and may be any year the parsers accept.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::PrimitiveDateTime;

use super::error::AuthError;

/// Seconds since the unix epoch, negative before it.
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs())
            .map(|s| -s)
            .unwrap_or(i64::MIN),
    }
}

/// `max_skew` in whole seconds, saturated to `i64`.
pub(crate) fn skew_secs(max_skew: Duration) -> i64 {
    i64::try_from(max_skew.as_secs()).unwrap_or(i64::MAX)
}

/// Parses the ISO 8601 UTC timestamp of RPC V1 and ACS3. The exact SDK form is tried
/// first; any RFC 3339 timestamp (fractional seconds, an explicit offset) is accepted too,
/// since nothing is gained by refusing an unambiguous instant.
pub(crate) fn parse_iso8601(field: &'static str, value: &str) -> Result<i64, AuthError> {
    let sdk_form = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    if let Ok(t) = PrimitiveDateTime::parse(value, sdk_form) {
        return Ok(t.assume_utc().unix_timestamp());
    }
    time::OffsetDateTime::parse(value, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            AuthError::Malformed(format!(
                "`{field}` must look like 2024-01-31T08:00:00Z, got `{}`",
                truncate(value)
            ))
        })
}

/// Parses the HTTP `Date` header of ROA (RFC 1123, or the older forms HTTP allows).
pub(crate) fn parse_http_date(value: &str) -> Result<i64, AuthError> {
    httpdate::parse_http_date(value)
        .map(unix_secs)
        .map_err(|_| {
            AuthError::Malformed(format!(
                "`Date` must look like Wed, 31 Jan 2024 08:00:00 GMT, got `{}`",
                truncate(value)
            ))
        })
}

/// Fails with [`AuthError::Expired`] when `timestamp` (as sent, for the message) is more
/// than `max_skew` away from `now`.
pub(crate) fn check_skew(
    raw: &str,
    timestamp: i64,
    now: i64,
    max_skew: Duration,
) -> Result<(), AuthError> {
    let distance = (i128::from(now) - i128::from(timestamp)).unsigned_abs();
    if distance > u128::from(max_skew.as_secs()) {
        return Err(AuthError::Expired {
            timestamp: truncate(raw).to_owned(),
            max_skew_secs: max_skew.as_secs(),
        });
    }
    Ok(())
}

/// At most 64 bytes of a client value, cut on a character boundary, so error messages
/// stay short whatever the client sent.
pub(crate) fn truncate(value: &str) -> &str {
    if value.len() <= 64 {
        return value;
    }
    let mut end = 64;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sdk_timestamps() {
        assert_eq!(
            parse_iso8601("Timestamp", "2026-11-24T19:17:54Z").unwrap(),
            1_795_547_874
        );
        assert_eq!(
            parse_iso8601("x-acs-date", "2026-11-24T19:17:54.500Z").unwrap(),
            1_795_547_874
        );
        assert_eq!(
            parse_http_date("Tue, 24 Nov 2026 19:17:54 GMT").unwrap(),
            1_795_547_874
        );
        assert!(parse_iso8601("Timestamp", "yesterday").is_err());
        assert!(parse_http_date("2026-11-24T19:17:54Z").is_err());
    }

    #[test]
    fn skew_is_inclusive_and_symmetric() {
        let skew = Duration::from_secs(900);
        assert!(check_skew("t", 1000, 1900, skew).is_ok());
        assert!(check_skew("t", 1900, 1000, skew).is_ok());
        assert!(check_skew("t", 1000, 1901, skew).is_err());
        assert!(check_skew("t", i64::MIN, i64::MAX, skew).is_err());
    }

    #[test]
    fn converts_system_time_both_sides_of_the_epoch() {
        assert_eq!(unix_secs(UNIX_EPOCH + Duration::from_secs(5)), 5);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(5)), -5);
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let long = "é".repeat(100);
        assert!(truncate(&long).len() <= 64);
        assert_eq!(truncate("short"), "short");
    }
}
