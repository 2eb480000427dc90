//! Sign-up, sign-in, refresh, sign-out and `me`, for the platform's
//! accounts (`/api/v1/auth/…`) and a project's end users
//! (`/api/v1/projects/{project}/auth/…`): the same handlers, told apart by
//! their [`Realm`].

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::PlatformState;
use super::extract::{Account, Realm, client};
use crate::kit::{ApiJson, ApiResult, Bearer, ClientIp};

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
    ApiJson(state.jwks())
}

pub async fn sign_up(
    State(state): State<PlatformState>,
    realm: Realm,
    ip: Option<Extension<ClientIp>>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let (id, tokens) = state
        .sign_up(realm.audience(), &body.email, &body.password, client(ip))
        .await?;
    let mut answer = serde_json::to_value(&tokens).unwrap_or_default();
    match &realm {
        Realm::Accounts => answer["account"] = json!({ "id": id }),
        Realm::Users(project) => answer["user"] = json!({ "id": id, "project": project }),
    }
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

pub async fn sign_in(
    State(state): State<PlatformState>,
    realm: Realm,
    ip: Option<Extension<ClientIp>>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<ApiJson<Value>> {
    let tokens = state
        .sign_in(realm.audience(), &body.email, &body.password, client(ip))
        .await?;
    Ok(ApiJson(serde_json::to_value(&tokens).unwrap_or_default()))
}

pub async fn refresh(
    State(state): State<PlatformState>,
    realm: Realm,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<ApiJson<Value>> {
    let tokens = state.refresh(&body.refresh_token, realm.project()).await?;
    Ok(ApiJson(serde_json::to_value(&tokens).unwrap_or_default()))
}

/// `{"everywhere": true}` ends every session of the account or end user
/// (an empty body is `{}`).
pub async fn sign_out(
    State(state): State<PlatformState>,
    realm: Realm,
    Bearer(token): Bearer,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let options: SignOutBody = if body.iter().all(u8::is_ascii_whitespace) {
        SignOutBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| bunbase_core::Error::invalid(format!("invalid JSON body: {e}")))?
    };
    state
        .sign_out_token(&token, realm.project(), options.everywhere)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(
    State(state): State<PlatformState>,
    realm: Realm,
    Bearer(token): Bearer,
) -> ApiResult<ApiJson<Value>> {
    Ok(ApiJson(state.me(&token, realm.project()).await?))
}

/// The instance's administrator makes an account (sign-up closed or not).
pub async fn create_account(
    State(state): State<PlatformState>,
    Account(who): Account,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let id = state
        .create_account(&who, &body.email, &body.password)
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(json!({ "id": id, "email": body.email.trim().to_lowercase() })),
    ))
}
