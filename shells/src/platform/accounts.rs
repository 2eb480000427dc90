use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use bunbase_core::auth::Audience;
use serde::Deserialize;
use serde_json::{Value, json};

use super::PlatformState;
use super::extract::{Bearer, client};
use crate::kit::{ApiJson, ApiResult, ClientIp};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    pub refresh_token: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SignOutBody {
    #[serde(default)]
    pub everywhere: bool,
}

pub async fn jwks(State(state): State<PlatformState>) -> ApiJson<Value> {
    ApiJson(state.identity.jwks())
}

pub async fn sign_up(
    State(state): State<PlatformState>,
    ip: Option<Extension<ClientIp>>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let (id, tokens) = state
        .identity
        .sign_up(Audience::Accounts, &body.email, &body.password, client(ip))
        .await?;
    let mut answer = serde_json::to_value(&tokens).unwrap_or_default();
    answer["account"] = json!({ "id": id });
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

pub async fn sign_in(
    State(state): State<PlatformState>,
    ip: Option<Extension<ClientIp>>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<ApiJson<Value>> {
    let tokens = state
        .identity
        .sign_in(Audience::Accounts, &body.email, &body.password, client(ip))
        .await?;
    Ok(ApiJson(serde_json::to_value(&tokens).unwrap_or_default()))
}

pub async fn refresh(
    State(state): State<PlatformState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<ApiJson<Value>> {
    let tokens = state.identity.refresh(&body.refresh_token, None).await?;
    Ok(ApiJson(serde_json::to_value(&tokens).unwrap_or_default()))
}

/// An optional JSON body: empty means the defaults.
pub fn optional_body(body: &[u8]) -> Result<SignOutBody, bunbase_core::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(SignOutBody::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| bunbase_core::Error::invalid(format!("invalid JSON body: {e}")))
}

/// `{"everywhere": true}` ends every session of the account.
pub async fn sign_out(
    State(state): State<PlatformState>,
    Bearer(token): Bearer,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let everywhere = optional_body(&body)?.everywhere;
    // Only account tokens here; end users sign out under their project.
    state.identity.account(&token).await?;
    if everywhere {
        state.identity.sign_out_everywhere(&token).await?;
    } else {
        state.identity.sign_out(&token).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(
    State(state): State<PlatformState>,
    Bearer(token): Bearer,
) -> ApiResult<ApiJson<Value>> {
    Ok(ApiJson(state.identity.me(&token, None).await?))
}
