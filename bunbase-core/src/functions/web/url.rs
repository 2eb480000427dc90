//! `URL` parsing and setters (the WHATWG URL Standard, as the `url` crate's
//! `quirks` module implements it) and `application/x-www-form-urlencoded`.

use rquickjs::{Array, Ctx, Exception, Function, Object, Result, Value};
use url::{Url, form_urlencoded, quirks};

pub(super) fn add<'js>(ctx: &Ctx<'js>, host: &Object<'js>) -> Result<()> {
    host.set("urlParse", Function::new(ctx.clone(), parse)?)?;
    host.set("urlSet", Function::new(ctx.clone(), set)?)?;
    host.set("formParse", Function::new(ctx.clone(), form_parse)?)?;
    host.set("formSerialize", Function::new(ctx.clone(), form_serialize)?)?;
    Ok(())
}

/// The components of `input` (against `base`), or `null` when either does
/// not parse.
fn parse<'js>(ctx: Ctx<'js>, input: String, base: Option<String>) -> Result<Value<'js>> {
    let parsed = match base {
        Some(base) => {
            Url::parse(&base).and_then(|base| Url::options().base_url(Some(&base)).parse(&input))
        }
        None => Url::parse(&input),
    };
    match parsed {
        Ok(url) => components(&ctx, &url),
        Err(_) => Ok(Value::new_null(ctx)),
    }
}

/// Sets component `which` (the index in [`components`]) of `href` to
/// `value`. Invalid values leave the URL as it was, as the setters of the
/// spec do.
fn set<'js>(ctx: Ctx<'js>, href: String, which: u8, value: String) -> Result<Value<'js>> {
    let Ok(mut url) = Url::parse(&href) else {
        return Err(Exception::throw_type(&ctx, &format!("Invalid URL: {href}")));
    };
    let _ = match which {
        2 => quirks::set_protocol(&mut url, &value),
        3 => quirks::set_username(&mut url, &value),
        4 => quirks::set_password(&mut url, &value),
        5 => quirks::set_host(&mut url, &value),
        6 => quirks::set_hostname(&mut url, &value),
        7 => quirks::set_port(&mut url, &value),
        8 => {
            quirks::set_pathname(&mut url, &value);
            Ok(())
        }
        9 => {
            quirks::set_search(&mut url, &value);
            Ok(())
        }
        10 => {
            quirks::set_hash(&mut url, &value);
            Ok(())
        }
        _ => return Err(Exception::throw_range(&ctx, "no such URL component")),
    };
    components(&ctx, &url)
}

/// `[href, origin, protocol, username, password, host, hostname, port,
/// pathname, search, hash]`: what the prelude's `URL` getters return.
fn components<'js>(ctx: &Ctx<'js>, url: &Url) -> Result<Value<'js>> {
    let origin = quirks::origin(url);
    let parts: [&str; 11] = [
        quirks::href(url),
        &origin,
        quirks::protocol(url),
        quirks::username(url),
        quirks::password(url),
        quirks::host(url),
        quirks::hostname(url),
        quirks::port(url),
        quirks::pathname(url),
        quirks::search(url),
        quirks::hash(url),
    ];
    let array = Array::new(ctx.clone())?;
    for (i, part) in parts.into_iter().enumerate() {
        array.set(i, part)?;
    }
    Ok(array.into_value())
}

/// A query string as flat `[name, value, …]`, decoded.
fn form_parse(query: String) -> Vec<String> {
    let mut flat = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        flat.push(name.into_owned());
        flat.push(value.into_owned());
    }
    flat
}

/// Flat `[name, value, …]` as a query string (`a=1&b=x+y%26`).
fn form_serialize(flat: Vec<String>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for pair in flat.chunks_exact(2) {
        out.append_pair(&pair[0], &pair[1]);
    }
    out.finish()
}
