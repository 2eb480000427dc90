//! The HTTP trigger: any method on `/functions/v1/projects/{p}/fn/{name}[/{path…}]`.

use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use bunbase_core::functions::HttpCall;
use bunbase_core::functions::web::HttpRequest;
use bunbase_core::{Error, ProjectId};
use serde::Deserialize;

use super::FunctionsState;
use crate::kit::{ApiResult, bearer_token};

#[derive(Deserialize)]
pub struct InvokePath {
    project: String,
    name: String,
}

/// Headers a function never sees or sets: the connection's own.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

pub async fn invoke(
    State(state): State<FunctionsState>,
    Path(InvokePath { project, name }): Path<InvokePath>,
    request: Request<Body>,
) -> ApiResult<Response> {
    let project = ProjectId::new(project)?;
    let (parts, body) = request.into_parts();
    let caller = match bearer_token(&parts)? {
        Some(token) => Some(state.verifier.verify(&token, &project).await?),
        None => None,
    };
    let max = state.limits().maximum.request_bytes as usize;
    let body = to_bytes(body, max).await.map_err(|_| {
        Error::PayloadTooLarge(format!(
            "the request body is over {max} bytes, this server's limit for functions"
        ))
    })?;
    let host = parts
        .headers
        .get("x-forwarded-host")
        .or_else(|| parts.headers.get("host"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    let call = HttpCall {
        caller,
        project,
        function: name,
        request: HttpRequest {
            method: parts.method.as_str().to_string(),
            url: format!("{scheme}://{host}{path_and_query}"),
            headers,
            body: body.to_vec(),
        },
    };
    let invoked = state.invoke_http(call).await?;
    let mut response = Response::new(Body::from(invoked.response.body));
    *response.status_mut() = StatusCode::from_u16(invoked.response.status).map_err(|_| {
        Error::FunctionFailed(format!(
            "the function answered status {}",
            invoked.response.status
        ))
    })?;
    let headers = response.headers_mut();
    for (name, value) in invoked.response.headers {
        if HOP_BY_HOP.contains(&name.to_ascii_lowercase().as_str())
            || name.eq_ignore_ascii_case("content-length")
        {
            continue;
        }
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(name, value);
        }
    }
    if let Ok(id) = HeaderValue::try_from(invoked.id) {
        headers.insert("x-bunbase-invocation", id);
    }
    Ok(response.into_response())
}
