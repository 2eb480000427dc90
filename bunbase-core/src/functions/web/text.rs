//! `TextEncoder` and `TextDecoder` (UTF-8 only), natively.

use std::borrow::Cow;

use rquickjs::{Ctx, Exception, Function, Object, Result, TypedArray};

pub(super) fn add<'js>(ctx: &Ctx<'js>, host: &Object<'js>) -> Result<()> {
    host.set("encode", Function::new(ctx.clone(), encode)?)?;
    host.set("encodeInto", Function::new(ctx.clone(), encode_into)?)?;
    host.set("decode", Function::new(ctx.clone(), decode)?)?;
    Ok(())
}

/// `text` is well-formed already (the prelude calls `toWellFormed`).
fn encode<'js>(ctx: Ctx<'js>, text: String) -> Result<TypedArray<'js, u8>> {
    TypedArray::new(ctx, text.into_bytes())
}

/// Writes whole characters of `text` while they fit; `[read, written]`,
/// `read` in UTF-16 code units as the spec counts.
fn encode_into(text: String, dest: TypedArray<'_, u8>) -> Vec<f64> {
    let Some(raw) = dest.as_raw() else {
        return vec![0.0, 0.0];
    };
    // SAFETY: the view's own bytes, written before any JavaScript runs again.
    let out = unsafe { &mut *raw.as_ptr() };
    let (mut read, mut written) = (0usize, 0usize);
    for c in text.chars() {
        let n = c.len_utf8();
        if written + n > out.len() {
            break;
        }
        c.encode_utf8(&mut out[written..written + n]);
        written += n;
        read += c.len_utf16();
    }
    vec![read as f64, written as f64]
}

/// UTF-8 to a string: a leading BOM is dropped unless `keep_bom`; invalid
/// bytes become U+FFFD, or a `TypeError` when `fatal`.
fn decode<'js>(
    ctx: Ctx<'js>,
    input: TypedArray<'js, u8>,
    fatal: bool,
    keep_bom: bool,
) -> Result<rquickjs::String<'js>> {
    // SAFETY: read before any JavaScript runs again; `input` keeps the buffer alive.
    let mut bytes = unsafe { input.as_bytes() }.unwrap_or(&[]);
    if !keep_bom {
        bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    }
    let text = if fatal {
        match std::str::from_utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => {
                return Err(Exception::throw_type(
                    &ctx,
                    "The encoded data was not valid for encoding utf-8",
                ));
            }
        }
    } else {
        String::from_utf8_lossy(bytes)
    };
    rquickjs::String::from_str(ctx, &text)
}
