use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::header;
use axum::http::request::Parts;
use bunbase_core::auth::{Principal, TokenVerifier};
use bunbase_core::{Error, ProjectId};

use super::ApiError;

/// Application state that can verify credentials.
pub trait AuthState: Send + Sync {
    fn verifier(&self) -> &Arc<dyn TokenVerifier>;
}

/// Who calls, in which project: the `{project}` of the route, validated
/// once, and the credential resolved for it. Every project-scoped handler
/// takes this first, so none parses the project again.
///
/// The credential is `Authorization: Bearer <token>` or, for clients that
/// cannot set headers (browser EventSource and WebSocket), the
/// `access_token` query parameter.
pub struct Caller {
    pub who: Principal,
    pub project: ProjectId,
}

impl<S: AuthState> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let token = require_bearer(parts)?;
        let project = path_project(parts, state).await?;
        let who = state.verifier().verify(&token, &project).await?;
        Ok(Caller { who, project })
    }
}

/// The caller's credential as sent, for work that outlives the request
/// (a stream checks it again while it is open).
#[derive(Clone)]
pub struct Bearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Bearer(require_bearer(parts)?))
    }
}

/// The bearer credential of a request, required.
pub fn require_bearer(parts: &Parts) -> Result<String, Error> {
    bearer_token(parts)?.ok_or_else(|| {
        Error::Unauthenticated("missing credential: send Authorization: Bearer <token>".into())
    })
}

/// The `{project}` of the matched route: credentials are resolved for it.
pub async fn path_project<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Result<ProjectId, Error> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| Error::invalid(format!("invalid path: {}", e.body_text())))?;
    let raw = params
        .iter()
        .find(|(name, _)| *name == "project")
        .map(|(_, value)| value)
        .ok_or_else(|| Error::internal("Auth used on a route without {project}"))?;
    ProjectId::new(raw)
}

/// The bearer credential of a request: the `Authorization: Bearer` header,
/// else — only for a request that opens a stream, which browsers can't
/// give headers (an `EventSource`'s `Accept: text/event-stream`, a
/// WebSocket upgrade) — the `access_token` query parameter. Elsewhere a
/// token in the URL (where logs, history and referrers keep it) is refused.
pub fn bearer_token(parts: &Parts) -> Result<Option<String>, Error> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| Error::Unauthenticated("malformed Authorization header".into()))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::Unauthenticated("Authorization header must be 'Bearer <token>'".into())
            })?;
        return Ok(Some(token.to_string()));
    }
    let query = parts.uri.query().unwrap_or("");
    for pair in query.split('&') {
        if let Some(raw) = pair.strip_prefix("access_token=") {
            let token = percent_decode(raw);
            if token.is_empty() {
                continue;
            }
            if !opens_stream(parts) {
                return Err(Error::Unauthenticated(
                    "access_token in the query string is only for streams (EventSource, WebSocket); send Authorization: Bearer <token>".into(),
                ));
            }
            return Ok(Some(token));
        }
    }
    Ok(None)
}

/// A GET that asks for an event stream or a WebSocket.
fn opens_stream(parts: &Parts) -> bool {
    let has = |name: header::HeaderName, wanted: &str| {
        parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains(wanted))
    };
    parts.method == axum::http::Method::GET
        && (has(header::ACCEPT, "text/event-stream") || has(header::UPGRADE, "websocket"))
}

/// Minimal percent-decoding for a query value (`+` is a space).
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, auth: Option<&str>) -> Parts {
        let mut req = axum::http::Request::builder()
            .uri(uri)
            .header(header::ACCEPT, "text/event-stream");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn reads_header_then_query() {
        assert_eq!(
            bearer_token(&parts("/", Some("Bearer abc")))
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&parts("/?access_token=a%2Bb", None))
                .unwrap()
                .as_deref(),
            Some("a+b")
        );
        assert_eq!(bearer_token(&parts("/?x=1", None)).unwrap(), None);
        assert!(bearer_token(&parts("/", Some("Basic abc"))).is_err());
        assert!(bearer_token(&parts("/", Some("Bearer "))).is_err());
    }

    #[test]
    fn query_tokens_only_open_streams() {
        let request = |method: &str, headers: &[(header::HeaderName, &str)]| {
            let mut req = axum::http::Request::builder()
                .method(method)
                .uri("/x?access_token=t0k");
            for (name, value) in headers {
                req = req.header(name, *value);
            }
            req.body(()).unwrap().into_parts().0
        };
        let sse = (header::ACCEPT, "text/event-stream");
        let ws = (header::UPGRADE, "websocket");
        assert_eq!(
            bearer_token(&request("GET", std::slice::from_ref(&sse)))
                .unwrap()
                .as_deref(),
            Some("t0k")
        );
        assert_eq!(
            bearer_token(&request("GET", &[ws])).unwrap().as_deref(),
            Some("t0k")
        );
        for refused in [request("GET", &[]), request("POST", &[sse])] {
            let err = bearer_token(&refused).unwrap_err();
            assert!(err.to_string().contains("only for streams"), "{err}");
        }
    }

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("a%20b+c%zz%4"), "a b c%zz%4");
    }
}
