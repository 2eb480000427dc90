//! Command replies, encoded in RESP2 or RESP3.

use bytes::{BufMut, Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`
    Simple(&'static str),
    /// `-ERR …` (the whole text, including its prefix word).
    Error(String),
    Integer(i64),
    Bulk(Bytes),
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    Nil,
    Array(Vec<Reply>),
    /// A missing array: `*-1` in RESP2, `_` in RESP3.
    NilArray,
    /// RESP3 double; a bulk string in RESP2.
    Double(f64),
    /// RESP3 map; a flat array in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 push (pub/sub messages); an array in RESP2.
    Push(Vec<Reply>),
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Simple("OK")
    }

    pub fn error(message: impl Into<String>) -> Reply {
        Reply::Error(message.into())
    }

    pub fn bulk(value: impl Into<Bytes>) -> Reply {
        Reply::Bulk(value.into())
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the encoding of this reply to `out`.
    pub fn encode(&self, out: &mut BytesMut, resp3: bool) {
        match self {
            Reply::Simple(s) => {
                out.put_u8(b'+');
                out.put_slice(s.as_bytes());
                out.put_slice(b"\r\n");
            }
            Reply::Error(e) => {
                out.put_u8(b'-');
                // Error lines may not contain line breaks.
                for b in e.bytes() {
                    out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
                }
                out.put_slice(b"\r\n");
            }
            Reply::Integer(n) => {
                out.put_u8(b':');
                put_int(out, *n);
                out.put_slice(b"\r\n");
            }
            Reply::Bulk(b) => {
                out.put_u8(b'$');
                put_int(out, b.len() as i64);
                out.put_slice(b"\r\n");
                out.put_slice(b);
                out.put_slice(b"\r\n");
            }
            Reply::Nil => out.put_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
            Reply::NilArray => out.put_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
            Reply::Push(items) => {
                out.put_u8(if resp3 { b'>' } else { b'*' });
                put_int(out, items.len() as i64);
                out.put_slice(b"\r\n");
                for item in items {
                    item.encode(out, resp3);
                }
            }
            Reply::Array(items) => {
                out.put_u8(b'*');
                put_int(out, items.len() as i64);
                out.put_slice(b"\r\n");
                for item in items {
                    item.encode(out, resp3);
                }
            }
            Reply::Double(d) => {
                let text = format_double(*d);
                if resp3 {
                    out.put_u8(b',');
                    out.put_slice(text.as_bytes());
                    out.put_slice(b"\r\n");
                } else {
                    Reply::Bulk(Bytes::from(text)).encode(out, resp3);
                }
            }
            Reply::Map(pairs) => {
                out.put_u8(if resp3 { b'%' } else { b'*' });
                let count = if resp3 { pairs.len() } else { pairs.len() * 2 };
                put_int(out, count as i64);
                out.put_slice(b"\r\n");
                for (k, v) in pairs {
                    k.encode(out, resp3);
                    v.encode(out, resp3);
                }
            }
        }
    }
}

fn put_int(out: &mut BytesMut, n: i64) {
    let mut buf = itoa_buf(n);
    out.put_slice(buf.as_bytes_mut());
}

struct IntText {
    bytes: [u8; 20],
    start: usize,
}

impl IntText {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

/// Formats an integer without allocating (replies are on the hot path).
fn itoa_buf(n: i64) -> IntText {
    let mut bytes = [0u8; 20];
    let mut i = bytes.len();
    let negative = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        bytes[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if negative {
        i -= 1;
        bytes[i] = b'-';
    }
    IntText { bytes, start: i }
}

/// Redis's double formatting: integers without a fraction, `inf`, `-inf`.
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == d.trunc() && d.abs() < 1e17 {
        return format!("{}", d as i64);
    }
    let text = format!("{d}");
    text
}

/// A double that parses back to exactly the same value (persistence).
pub fn format_double_exact(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format!("{d:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: Reply, resp3: bool) -> String {
        let mut out = BytesMut::new();
        r.encode(&mut out, resp3);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn encodes_both_protocols() {
        assert_eq!(enc(Reply::ok(), false), "+OK\r\n");
        assert_eq!(enc(Reply::Integer(-42), false), ":-42\r\n");
        assert_eq!(
            enc(Reply::Integer(i64::MIN), false),
            ":-9223372036854775808\r\n"
        );
        assert_eq!(enc(Reply::bulk("hi"), false), "$2\r\nhi\r\n");
        assert_eq!(enc(Reply::Nil, false), "$-1\r\n");
        assert_eq!(enc(Reply::Nil, true), "_\r\n");
        assert_eq!(
            enc(Reply::error("ERR bad\r\nthing"), false),
            "-ERR bad  thing\r\n"
        );
        assert_eq!(
            enc(Reply::Array(vec![Reply::Integer(1), Reply::Nil]), false),
            "*2\r\n:1\r\n$-1\r\n"
        );
        assert_eq!(enc(Reply::Double(1.5), true), ",1.5\r\n");
        assert_eq!(enc(Reply::Double(3.0), false), "$1\r\n3\r\n");
        let map = Reply::Map(vec![(Reply::bulk("a"), Reply::Integer(1))]);
        assert_eq!(enc(map.clone(), true), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(map, false), "*2\r\n$1\r\na\r\n:1\r\n");
    }
}
