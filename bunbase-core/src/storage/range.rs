//! `Range: bytes=…` requests (RFC 9110 §14): one range, from-to, from-, or
//! the last n bytes. Several ranges are answered with the whole object, as
//! the RFC allows.

use super::blob::ByteRange;
use crate::error::Error;

/// A range as asked, before the object's size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=start-` or `bytes=start-end`.
    From { start: u64, end: Option<u64> },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// Parses a `Range` header; `None` for forms answered with the whole
    /// object (several ranges, another unit).
    pub fn parse(header: &str) -> Result<Option<RangeSpec>, Error> {
        let Some(spec) = header.trim().strip_prefix("bytes=") else {
            return Ok(None);
        };
        if spec.contains(',') {
            return Ok(None);
        }
        let bad = || Error::invalid(format!("malformed Range header {header:?}"));
        let (from, to) = spec.trim().split_once('-').ok_or_else(bad)?;
        let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        if from.trim().is_empty() {
            return Ok(Some(RangeSpec::Suffix(number(to)?)));
        }
        let start = number(from)?;
        let end = if to.trim().is_empty() {
            None
        } else {
            Some(number(to)?)
        };
        if end.is_some_and(|end| end < start) {
            return Err(bad());
        }
        Ok(Some(RangeSpec::From { start, end }))
    }

    /// The bytes of an object of `size` this range names:
    /// `range_not_satisfiable` when none.
    pub fn resolve(self, size: u64) -> Result<ByteRange, Error> {
        let unsatisfiable = || {
            Error::RangeNotSatisfiable(format!("the range is outside the object's {size} bytes"))
        };
        match self {
            RangeSpec::From { start, end } => {
                if start >= size {
                    return Err(unsatisfiable());
                }
                let end = end.map_or(size - 1, |e| e.min(size - 1));
                Ok(ByteRange { start, end })
            }
            RangeSpec::Suffix(n) => {
                if n == 0 || size == 0 {
                    return Err(unsatisfiable());
                }
                Ok(ByteRange {
                    start: size - n.min(size),
                    end: size - 1,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn resolve(header: &str, size: u64) -> Result<Option<(u64, u64)>, Error> {
        Ok(match RangeSpec::parse(header)? {
            Some(spec) => {
                let r = spec.resolve(size)?;
                Some((r.start, r.end))
            }
            None => None,
        })
    }

    #[test]
    fn ranges_resolve_like_http() {
        assert_eq!(resolve("bytes=0-0", 10).unwrap(), Some((0, 0)));
        assert_eq!(resolve("bytes=2-", 10).unwrap(), Some((2, 9)));
        assert_eq!(resolve("bytes=2-100", 10).unwrap(), Some((2, 9)));
        assert_eq!(resolve("bytes=-3", 10).unwrap(), Some((7, 9)));
        assert_eq!(resolve("bytes=-30", 10).unwrap(), Some((0, 9)));
        assert_eq!(resolve("bytes=0-1,4-5", 10).unwrap(), None);
        assert_eq!(resolve("items=0-1", 10).unwrap(), None);
        for unsatisfiable in ["bytes=10-", "bytes=-0"] {
            assert_eq!(
                resolve(unsatisfiable, 10).unwrap_err().code(),
                ErrorCode::RangeNotSatisfiable
            );
        }
        assert_eq!(
            resolve("bytes=-1", 0).unwrap_err().code(),
            ErrorCode::RangeNotSatisfiable
        );
        for bad in ["bytes=a-b", "bytes=5-2", "bytes=5", "bytes=--1"] {
            assert_eq!(
                resolve(bad, 10).unwrap_err().code(),
                ErrorCode::InvalidInput
            );
        }
    }
}
