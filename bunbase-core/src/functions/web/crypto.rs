//! `crypto.getRandomValues`, `randomUUID` and the natives behind
//! `crypto.subtle` (SHA digests, HMAC), on aws-lc-rs.

use aws_lc_rs::{digest, hmac, rand};
use rquickjs::{ArrayBuffer, Ctx, Exception, Function, Object, Result, TypedArray};

pub(super) fn add<'js>(ctx: &Ctx<'js>, host: &Object<'js>) -> Result<()> {
    host.set("fill", Function::new(ctx.clone(), fill)?)?;
    host.set("uuid", Function::new(ctx.clone(), uuid)?)?;
    host.set("digest", Function::new(ctx.clone(), digest)?)?;
    host.set("hmacSign", Function::new(ctx.clone(), hmac_sign)?)?;
    host.set("hmacVerify", Function::new(ctx.clone(), hmac_verify)?)?;
    Ok(())
}

/// Fills the bytes `view` views with random ones (the prelude checked the
/// 65536-byte limit).
fn fill<'js>(ctx: Ctx<'js>, view: TypedArray<'js, u8>) -> Result<()> {
    let Some(raw) = view.as_raw() else {
        return Ok(());
    };
    // SAFETY: the view's own bytes, written before any JavaScript runs again.
    let out = unsafe { &mut *raw.as_ptr() };
    rand::fill(out).map_err(|_| Exception::throw_internal(&ctx, "no randomness available"))
}

/// A random (version 4) UUID, lower-case.
fn uuid(ctx: Ctx<'_>) -> Result<String> {
    let mut b = [0u8; 16];
    rand::fill(&mut b).map_err(|_| Exception::throw_internal(&ctx, "no randomness available"))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

fn digest_algorithm(ctx: &Ctx<'_>, name: &str) -> Result<&'static digest::Algorithm> {
    Ok(match name {
        "SHA-1" => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        "SHA-256" => &digest::SHA256,
        "SHA-384" => &digest::SHA384,
        "SHA-512" => &digest::SHA512,
        _ => {
            return Err(Exception::throw_type(
                ctx,
                &format!("unsupported hash: {name}"),
            ));
        }
    })
}

fn hmac_algorithm(ctx: &Ctx<'_>, name: &str) -> Result<hmac::Algorithm> {
    Ok(match name {
        "SHA-1" => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        "SHA-256" => hmac::HMAC_SHA256,
        "SHA-384" => hmac::HMAC_SHA384,
        "SHA-512" => hmac::HMAC_SHA512,
        _ => {
            return Err(Exception::throw_type(
                ctx,
                &format!("unsupported hash: {name}"),
            ));
        }
    })
}

/// Runs `f` over the bytes `view` views (empty if detached).
fn with_bytes<R>(view: &TypedArray<'_, u8>, f: impl FnOnce(&[u8]) -> R) -> R {
    // SAFETY: `f` is Rust only: no JavaScript runs while the slice lives.
    f(unsafe { view.as_bytes() }.unwrap_or(&[]))
}

fn digest<'js>(ctx: Ctx<'js>, hash: String, data: TypedArray<'js, u8>) -> Result<ArrayBuffer<'js>> {
    let algorithm = digest_algorithm(&ctx, &hash)?;
    let sum = with_bytes(&data, |data| digest::digest(algorithm, data));
    ArrayBuffer::new_copy(ctx, sum.as_ref())
}

fn hmac_key(ctx: &Ctx<'_>, hash: &str, key: &TypedArray<'_, u8>) -> Result<hmac::Key> {
    let algorithm = hmac_algorithm(ctx, hash)?;
    Ok(with_bytes(key, |key| hmac::Key::new(algorithm, key)))
}

fn hmac_sign<'js>(
    ctx: Ctx<'js>,
    hash: String,
    key: TypedArray<'js, u8>,
    data: TypedArray<'js, u8>,
) -> Result<ArrayBuffer<'js>> {
    let key = hmac_key(&ctx, &hash, &key)?;
    let tag = with_bytes(&data, |data| hmac::sign(&key, data));
    ArrayBuffer::new_copy(ctx, tag.as_ref())
}

/// Constant-time comparison of `signature` with the HMAC of `data`.
fn hmac_verify<'js>(
    ctx: Ctx<'js>,
    hash: String,
    key: TypedArray<'js, u8>,
    signature: TypedArray<'js, u8>,
    data: TypedArray<'js, u8>,
) -> Result<bool> {
    let key = hmac_key(&ctx, &hash, &key)?;
    let signature = with_bytes(&signature, <[u8]>::to_vec);
    Ok(with_bytes(&data, |data| {
        hmac::verify(&key, data, &signature).is_ok()
    }))
}
