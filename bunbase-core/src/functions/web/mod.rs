//! The global environment of a function: the Web/Fetch API shapes of
//! Cloudflare Workers and Deno Deploy (`Request`, `Response`, `Headers`,
//! `URL`, `fetch`, `crypto.subtle`, timers, `console`, …) on a QuickJS
//! context.
//!
//! The classes are JavaScript (`prelude.js`, loaded in sections on first
//! use: see `prelude`); what needs the host or speed is native Rust
//! (`text`, `url`, `crypto`, `timers` and the console and fetch below),
//! handed to the prelude in a `host` object that only the prelude's
//! closures keep. Nothing native stays on `globalThis`.
//!
//! Crossing the boundary: [`to_request`] builds the handler's `Request`,
//! [`read_response`] reads the `Response` it returned. Both use helpers the
//! prelude returned, kept in the runtime's userdata (one entry per
//! installed context), out of reach of user code.
//!
//! Everything here runs on the runtime's own thread: nothing is `Send`.

mod crypto;
mod prelude;
mod text;
mod timers;
mod url;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use rquickjs::{
    Array, Ctx, Error, Exception, Function, IntoJs, JsLifetime, Object, Promise, Result,
    TypedArray, Value,
};

/// Receives what the function's console prints. Called on the runtime's thread.
pub trait Console {
    fn line(&self, level: &str, message: String);
}

/// An outgoing `fetch` as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The answer to a [`FetchRequest`]; `url` is the final one, after redirects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub url: String,
}

/// What the host lets the function reach. Called on the runtime's thread.
pub trait Outside {
    /// Performs `fetch` (checking allow-lists is the implementation's job);
    /// `Err(message)` rejects the JS promise with a `TypeError(message)`.
    fn fetch(
        &self,
        request: FetchRequest,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<FetchResponse, String>>>>;
}

/// What [`install`] connects the globals to.
pub struct Host {
    pub console: Rc<dyn Console>,
    pub outside: Rc<dyn Outside>,
}

/// An incoming HTTP request as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What the handler answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Defines the globals in `ctx` (call once on a fresh context, before user code).
pub fn install<'js>(ctx: &Ctx<'js>, host: Host) -> Result<()> {
    let natives = Object::new(ctx.clone())?;
    text::add(ctx, &natives)?;
    url::add(ctx, &natives)?;
    crypto::add(ctx, &natives)?;
    timers::add(ctx, &natives)?;
    let console = host.console;
    natives.set(
        "log",
        Function::new(ctx.clone(), move |level: String, message: String| {
            console.line(&level, message)
        })?,
    )?;
    let outside = host.outside;
    natives.set(
        "fetch",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  method: String,
                  url: String,
                  headers: Vec<String>,
                  body: TypedArray<'js, u8>| {
                fetch(&ctx, outside.as_ref(), method, url, headers, &body)
            },
        )?,
    )?;
    natives.set(
        "load",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, section: String| {
            prelude::evaluate(&ctx, &section)
        })?,
    )?;
    let prelude: Function = prelude::evaluate(ctx, prelude::CORE)?.get()?;
    let helpers: Object = prelude.call((natives,))?;
    let mut hidden = match ctx.remove_userdata::<Hidden<'js>>() {
        Ok(Some(hidden)) => *hidden,
        _ => Hidden(Vec::new()),
    };
    hidden.0.push((context_key(ctx), helpers));
    if ctx.store_userdata(hidden).is_err() {
        return Err(Exception::throw_internal(
            ctx,
            "cannot keep the web helpers",
        ));
    }
    Ok(())
}

/// Builds a JS `Request` from it (its body is `null` when empty).
pub fn to_request<'js>(ctx: &Ctx<'js>, request: HttpRequest) -> Result<Value<'js>> {
    let make: Function = helpers(ctx)?.get("request")?;
    let body = TypedArray::<u8>::new(ctx.clone(), request.body)?;
    make.call((request.method, request.url, flatten(request.headers), body))
}

/// Reads a value the handler returned (after awaiting it): it must be a
/// `Response`, whose body is read to its end (awaiting a stream body).
///
/// `Err` carries a message for the function's author: "the handler
/// returned undefined, not a Response", "the response body … is larger
/// than the limit of N bytes" (a stream body is cancelled as soon as it
/// passes `max_bytes`, so at most that plus one chunk is buffered), or
/// whatever the body stream threw.
pub async fn read_response<'js>(
    ctx: &Ctx<'js>,
    value: Value<'js>,
    max_bytes: usize,
) -> std::result::Result<HttpResponse, String> {
    let failed = |e: Error| thrown_message(ctx, e);
    let read: Function = helpers(ctx).and_then(|h| h.get("read")).map_err(failed)?;
    let promise: Promise = read.call((value, max_bytes as f64)).map_err(failed)?;
    let parts: Array = promise.into_future().await.map_err(failed)?;
    let status: u16 = parts.get(0).map_err(failed)?;
    let headers: Vec<String> = parts.get(1).map_err(failed)?;
    let body: TypedArray<u8> = parts.get(2).map_err(failed)?;
    Ok(HttpResponse {
        status,
        headers: pairs(headers),
        body: bytes(&body),
    })
}

/// The prelude's helpers for each installed context of a runtime.
struct Hidden<'js>(Vec<(usize, Object<'js>)>);

// SAFETY: `Hidden` holds only `'js` values, and `Changed` is the same type
// with that lifetime replaced.
unsafe impl<'js> JsLifetime<'js> for Hidden<'js> {
    type Changed<'to> = Hidden<'to>;
}

fn context_key(ctx: &Ctx<'_>) -> usize {
    ctx.as_raw().as_ptr() as usize
}

fn helpers<'js>(ctx: &Ctx<'js>) -> Result<Object<'js>> {
    let key = context_key(ctx);
    let found = ctx.userdata::<Hidden<'js>>().and_then(|hidden| {
        hidden
            .0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, o)| o.clone())
    });
    found.ok_or_else(|| {
        Exception::throw_internal(ctx, "web::install was not called on this context")
    })
}

/// The message of what `e` threw (without the error's name), for the host.
fn thrown_message(ctx: &Ctx<'_>, e: Error) -> String {
    if !matches!(e, Error::Exception) {
        return e.to_string();
    }
    let value = ctx.catch();
    if let Some(exception) = value.as_exception() {
        return exception
            .message()
            .unwrap_or_else(|| "an error without a message".into());
    }
    match value.as_string().map(|s| s.to_string()) {
        Some(Ok(s)) => s,
        _ => format!("a {} was thrown", value.type_name()),
    }
}

/// The bytes a `Uint8Array` views (empty if its buffer was detached).
fn bytes(array: &TypedArray<'_, u8>) -> Vec<u8> {
    // SAFETY: copied at once, with no JavaScript running meanwhile.
    unsafe { array.as_bytes() }
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// Header pairs as the flat `[name, value, name, value, …]` the prelude uses.
fn flatten(headers: Vec<(String, String)>) -> Vec<String> {
    let mut flat = Vec::with_capacity(headers.len() * 2);
    for (name, value) in headers {
        flat.push(name);
        flat.push(value);
    }
    flat
}

fn pairs(flat: Vec<String>) -> Vec<(String, String)> {
    let mut pairs = Vec::with_capacity(flat.len() / 2);
    let mut items = flat.into_iter();
    while let (Some(name), Some(value)) = (items.next(), items.next()) {
        pairs.push((name, value));
    }
    pairs
}

/// `fetch` through the host: a promise of `[status, headers, body, url]`,
/// or of the error's message (which the prelude throws as a `TypeError`).
fn fetch<'js>(
    ctx: &Ctx<'js>,
    outside: &dyn Outside,
    method: String,
    url: String,
    headers: Vec<String>,
    body: &TypedArray<'js, u8>,
) -> Result<Promise<'js>> {
    let pending = outside.fetch(FetchRequest {
        method,
        url,
        headers: pairs(headers),
        body: bytes(body),
    });
    let (promise, resolve, reject) = ctx.promise()?;
    let task_ctx = ctx.clone();
    ctx.spawn(async move {
        let ctx = task_ctx;
        let answer = match pending.await {
            Ok(response) => fetched(&ctx, response),
            Err(message) => message.into_js(&ctx),
        };
        // A failed resolve or reject means the context is going away.
        let _ = match answer {
            Ok(value) => resolve.call::<_, ()>((value,)),
            Err(_) => reject.call::<_, ()>((ctx.catch(),)),
        };
    });
    Ok(promise)
}

fn fetched<'js>(ctx: &Ctx<'js>, response: FetchResponse) -> Result<Value<'js>> {
    let parts = Array::new(ctx.clone())?;
    parts.set(0, response.status)?;
    parts.set(1, flatten(response.headers))?;
    parts.set(2, TypedArray::<u8>::new(ctx.clone(), response.body)?)?;
    parts.set(3, response.url)?;
    Ok(parts.into_value())
}
