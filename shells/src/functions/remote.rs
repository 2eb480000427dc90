//! Functions' bindings over HTTP, for a functions service that runs
//! without the data services (docker compose): `ctx.bunbase.docs`, `kv`,
//! `storage` and secrets go to Bundoc, Bunder Manager, Storage and BunKMS
//! through one base URL (the gateway) with a platform token (`*:rw:TOKEN`
//! in those services' tokens, valid in every project). Events go on this
//! process's bus when it has one, over HTTP to Buncast otherwise.
//!
//! Every call acts in the project of the function's credential, never
//! another, and answers as [`LocalPlatform`] does: the same arguments
//! (parsed by the same [`Args`]), the same JSON shapes, `null`/`false` for
//! a missing document, key or object and `not_found` for a missing
//! collection or bucket. The one difference: the services see the
//! platform token's principal (`service:*:N`), not `function:{name}`, so
//! the function's own rights are checked here, as the services would.

use std::collections::BTreeMap;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bunbase_client::{Client, Put, PutOptions};
use bunbase_core::Error;
use bunbase_core::auth::{Access, Principal};
use bunbase_core::events::Events;
use bunbase_core::functions::platform::{
    Args, BindingCalls, LocalPlatform, MAX_STORAGE_READ, Platform, dispatch,
};
use bunbase_core::storage::ObjectPath;
use futures_util::StreamExt;
use serde_json::{Value, json};

/// The bindings over HTTP (events on the bus when there is one).
pub struct RemotePlatform {
    client: Client,
    /// The base URL without its trailing slash: signed URLs are given back
    /// relative to it, as [`LocalPlatform`] gives them.
    base: String,
    /// This process's bus: `events.publish` goes there when set.
    events: Option<Events>,
}

impl RemotePlatform {
    /// The services at `url` (`http://traefik`), called with the platform
    /// token `token`.
    pub fn new(url: &str, token: &str) -> Result<RemotePlatform, Error> {
        let base = url.trim_end_matches('/').to_string();
        let client = Client::new(base.clone())?.with_token(token);
        Ok(RemotePlatform {
            client,
            base,
            events: None,
        })
    }

    /// Publishes on `events` (this process's bus) instead of over HTTP.
    pub fn with_events(mut self, events: Option<Events>) -> RemotePlatform {
        self.events = events;
        self
    }

    /// Whether `events.publish` goes on this process's bus.
    pub fn publishes_locally(&self) -> bool {
        self.events.is_some()
    }
}

/// The check the service would make of the function's own credential (the
/// platform token itself may read and write in every project).
fn allowed(who: &Principal, access: Access) -> Result<(), Error> {
    who.authorize(&who.project, access)
}

#[async_trait]
impl Platform for RemotePlatform {
    async fn call(&self, who: &Principal, method: &str, args: Value) -> Result<Value, Error> {
        if method == "events.publish"
            && let Some(events) = &self.events
        {
            let bus = LocalPlatform {
                events: Some(events.clone()),
                ..LocalPlatform::default()
            };
            return bus.call(who, method, args).await;
        }
        dispatch(self, who, method, args).await
    }

    async fn secrets(
        &self,
        who: &Principal,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, Error> {
        let mut out = BTreeMap::new();
        if names.is_empty() {
            return Ok(out);
        }
        // BunKMS reads a secret's value for writers only.
        allowed(who, Access::Write)?;
        let kms = self.client.kms();
        for name in names {
            let (value, _) = kms.secret(who.project.as_str(), name, None).await?;
            let text = String::from_utf8(value).map_err(|_| {
                Error::invalid(format!(
                    "secret {name} holds bytes that are not UTF-8 text; functions receive text secrets"
                ))
            })?;
            out.insert(name.clone(), text);
        }
        Ok(out)
    }
}

impl RemotePlatform {
    fn collection(&self, who: &Principal, name: &str) -> bunbase_client::DocsCollection {
        self.client.docs_in(who.project.as_str(), name)
    }
}

#[async_trait]
impl BindingCalls for RemotePlatform {
    // ---- docs ----

    async fn docs_get(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let collection = args.string("collection")?;
        let id = args.string("id")?;
        allowed(who, Access::Read)?;
        // `None` only for a missing document; a missing collection stays
        // `not_found`.
        let doc = self.collection(who, &collection).get(&id).await?;
        Ok(doc.unwrap_or(Value::Null))
    }

    async fn docs_query(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let collection = args.string("collection")?;
        let query = args.object_or_absent("query")?;
        allowed(who, Access::Read)?;
        let page = self.collection(who, &collection).query(&query).await?;
        Ok(json!(page))
    }

    async fn docs_create(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let collection = args.string("collection")?;
        let mut data = args.object("data")?;
        let id = args.optional_string("id")?;
        if let (Some(id), Value::Object(map)) = (id, &mut data) {
            if map.get("_id").is_some_and(|given| given != &json!(id)) {
                return Err(args.invalid("data._id differs from id"));
            }
            map.insert("_id".into(), json!(id));
        }
        allowed(who, Access::Write)?;
        self.collection(who, &collection).create(&data).await
    }

    /// A JSON Merge Patch, as the REST API's PATCH.
    async fn docs_update(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let collection = args.string("collection")?;
        let id = args.string("id")?;
        let data = args.object("data")?;
        allowed(who, Access::Write)?;
        self.collection(who, &collection).patch(&id, &data).await
    }

    async fn docs_delete(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let collection = args.string("collection")?;
        let id = args.string("id")?;
        allowed(who, Access::Write)?;
        match self.collection(who, &collection).delete(&id).await {
            Ok(()) => Ok(json!(true)),
            // The document is missing (false), not the collection.
            Err(Error::NotFound(message)) if message.starts_with("no document ") => {
                Ok(json!(false))
            }
            Err(e) => Err(e),
        }
    }

    // ---- kv ----

    async fn kv_get(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let key = args.string("key")?;
        allowed(who, Access::Read)?;
        match self.client.kv().get(who.project.as_str(), &key).await? {
            None => Ok(Value::Null),
            Some(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) => Ok(json!(text)),
                Err(_) => Err(Error::invalid(format!(
                    "kv.get: the value of {key:?} is binary, not UTF-8 text"
                ))),
            },
        }
    }

    async fn kv_set(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let key = args.string("key")?;
        let value = match args.required("value")? {
            Value::String(text) => text,
            other => other.to_string(),
        };
        let ttl = args.optional_u64("ttl", "a whole number of seconds")?;
        allowed(who, Access::Write)?;
        let put = Put {
            ttl: ttl.map(std::time::Duration::from_secs),
            ..Put::default()
        };
        // Unconditional: it always writes.
        self.client
            .kv()
            .put_with(who.project.as_str(), &key, value, put)
            .await?;
        Ok(json!(true))
    }

    async fn kv_incr(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let key = args.string("key")?;
        let by = match args.required("by")? {
            Value::Number(n) if n.is_i64() => n.as_i64(),
            _ => None,
        }
        .ok_or_else(|| args.wrong("by", "a whole number"))?;
        allowed(who, Access::Write)?;
        let value = self
            .client
            .kv()
            .incr(who.project.as_str(), &key, by)
            .await?;
        Ok(json!(value))
    }

    async fn kv_delete(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let key = args.string("key")?;
        allowed(who, Access::Write)?;
        let deleted = self.client.kv().delete(who.project.as_str(), &key).await?;
        Ok(json!(deleted))
    }

    // ---- events (when this process has no bus) ----

    async fn events_publish(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let topic = args.string("topic")?;
        let data = args.required("data")?;
        allowed(who, Access::Write)?;
        let seq = self
            .client
            .events()
            .publish(who.project.as_str(), &topic, &data)
            .await?;
        Ok(json!({ "seq": seq, "topic": topic }))
    }

    // ---- storage ----

    /// `{size, content_type, etag, body}`, the body in base64.
    async fn storage_get(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let bucket = args.string("bucket")?;
        let key = args.string("key")?;
        ObjectPath::new(&bucket, &key)?;
        allowed(who, Access::Read)?;
        let fetched = self
            .client
            .storage()
            .get(who.project.as_str(), &bucket, &key, None)
            .await;
        let download = match fetched {
            Ok(download) => download,
            // The object is missing (null); a missing bucket says
            // "bucket … not found" and stays an error.
            Err(Error::NotFound(message)) if message.starts_with("object ") => {
                return Ok(Value::Null);
            }
            Err(e) => return Err(e),
        };
        let too_large = |size: u64| {
            Error::PayloadTooLarge(format!(
                "object {key} is {size} bytes; storage.get reads at most {MAX_STORAGE_READ}: \
                     use storage.sign for a signed URL to larger objects"
            ))
        };
        if download.size > MAX_STORAGE_READ {
            return Err(too_large(download.size));
        }
        let (size, content_type, etag) = (download.size, download.content_type, download.etag);
        let mut body = download.body;
        let mut bytes = Vec::with_capacity(size as usize);
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if (bytes.len() + chunk.len()) as u64 > MAX_STORAGE_READ {
                return Err(too_large((bytes.len() + chunk.len()) as u64));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(json!({
            "size": bytes.len(),
            "content_type": content_type,
            "etag": etag,
            "body": STANDARD.encode(&bytes),
        }))
    }

    /// The object's description, as the REST API's PUT answers it.
    async fn storage_put(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let bucket = args.string("bucket")?;
        let key = args.string("key")?;
        let encoded = args.string("body")?;
        let content_type = args.optional_string("content_type")?;
        let bytes = STANDARD
            .decode(encoded.as_bytes())
            .map_err(|e| args.invalid(&format!("body is not standard base64 ({e})")))?;
        ObjectPath::new(&bucket, &key)?;
        allowed(who, Access::Write)?;
        let options = PutOptions {
            content_type,
            ..PutOptions::default()
        };
        let info = self
            .client
            .storage()
            .put(who.project.as_str(), &bucket, &key, bytes, &options)
            .await?;
        serde_json::to_value(info).map_err(|e| Error::internal(format!("object info: {e}")))
    }

    /// `{url, method, expires_at}`, as the REST API's sign (the URL
    /// relative to the gateway).
    async fn storage_sign(&self, who: &Principal, mut args: Args<'_>) -> Result<Value, Error> {
        let bucket = args.string("bucket")?;
        let key = args.string("key")?;
        let method = match args.string("method")?.to_ascii_uppercase().as_str() {
            "GET" => "GET",
            "PUT" => "PUT",
            _ => return Err(args.wrong("method", "\"GET\" or \"PUT\"")),
        };
        let expires_in = args
            .optional_u64("expires", "a whole number of seconds")?
            .ok_or_else(|| args.missing("expires"))?;
        // Storage signs for readers (a bucket's rules may ask more).
        allowed(who, Access::Read)?;
        let request = json!({ "key": key, "method": method, "expires_in": expires_in });
        let mut signed = self
            .client
            .storage()
            .sign(who.project.as_str(), &bucket, &request)
            .await?;
        // The client joined it to our base, which is internal.
        if let Some(path) = signed.url.strip_prefix(&self.base) {
            signed.url = path.to_string();
        }
        serde_json::to_value(signed).map_err(|e| Error::internal(format!("signed URL: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use bunbase_core::ErrorCode;
    use bunbase_core::auth::{PrincipalKind, Rights};
    use bunbase_core::id::ProjectId;

    use super::*;

    fn function(rights: Rights) -> Principal {
        Principal {
            subject: "function:hello".into(),
            kind: PrincipalKind::SecretKey,
            project: ProjectId::new("a").unwrap(),
            rights,
        }
    }

    /// Nothing listens there: a call that got past its checks would be
    /// `unavailable`.
    fn nowhere() -> RemotePlatform {
        RemotePlatform::new("http://127.0.0.1:9/", "platform-token-0000000000").unwrap()
    }

    #[tokio::test]
    async fn arguments_are_checked_before_any_request() {
        let p = nowhere();
        let who = function(Rights::READ_WRITE);
        let cases = [
            ("foo.bar", json!({}), "unknown binding foo.bar"),
            (
                "docs.get",
                json!({"collection": "c"}),
                "missing argument id",
            ),
            (
                "docs.create",
                json!({"collection": "c", "data": {"_id": "a"}, "id": "b"}),
                "data._id differs from id",
            ),
            ("kv.incr", json!({"key": "k", "by": 1.5}), "by must be"),
            (
                "storage.put",
                json!({"bucket": "b", "key": "k", "body": "!!"}),
                "base64",
            ),
            (
                "storage.sign",
                json!({"bucket": "b", "key": "k", "method": "DELETE", "expires": 60}),
                "method must be",
            ),
            (
                "events.publish",
                json!({"topic": "t", "data": 1, "x": 2}),
                "unknown argument",
            ),
        ];
        for (method, args, says) in cases {
            let err = p.call(&who, method, args).await.unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidInput, "{method}: {err}");
            assert!(err.to_string().contains(says), "{method}: {err}");
        }
    }

    #[tokio::test]
    async fn the_functions_own_rights_are_checked_here() {
        let p = nowhere();
        let reader = function(Rights::READ);
        for (method, args) in [
            ("kv.set", json!({"key": "k", "value": "v"})),
            ("docs.delete", json!({"collection": "c", "id": "x"})),
            ("events.publish", json!({"topic": "t", "data": 1})),
        ] {
            let err = p.call(&reader, method, args).await.unwrap_err();
            assert_eq!(err.code(), ErrorCode::PermissionDenied, "{method}: {err}");
        }
        let err = p.secrets(&reader, &["a".into()]).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
        // A read gets as far as the (absent) server.
        let err = p
            .call(&reader, "kv.get", json!({"key": "k"}))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unavailable, "{err}");
        assert!(p.secrets(&reader, &[]).await.unwrap().is_empty());
    }

    #[test]
    fn the_url_must_be_http() {
        assert!(RemotePlatform::new("traefik:80", "platform-token-0000000000").is_err());
    }
}
