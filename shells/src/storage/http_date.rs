//! HTTP dates (IMF-fixdate, RFC 9110 §5.6.7) for `Last-Modified` and
//! `If-Modified-Since`.

use std::time::{Duration, UNIX_EPOCH};

/// `Sun, 06 Nov 1994 08:49:37 GMT` of milliseconds since the epoch.
pub fn format(millis: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(millis))
}

/// Seconds since the epoch of an HTTP date; `None` if malformed (the
/// condition is then ignored, as RFC 9110 says).
pub fn parse(text: &str) -> Option<u64> {
    let at = httpdate::parse_http_date(text.trim()).ok()?;
    Some(at.duration_since(UNIX_EPOCH).ok()?.as_secs())
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        let text = super::format(784_111_777_000);
        assert_eq!(text, "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(super::parse(&text), Some(784_111_777));
        assert_eq!(super::parse("yesterday"), None);
    }
}
