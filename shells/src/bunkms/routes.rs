use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bunbase_core::Error;
use bunbase_core::kms::AuditQuery;
use bunbase_core::kms::ciphertext::Ciphertext;
use bunbase_core::kms::crypto::{Algorithm, Purpose};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::KmsState;
use crate::kit::{ApiJson, ApiQuery, ApiResult, Caller};

#[derive(Deserialize)]
pub struct NamePath {
    name: String,
}

#[derive(Deserialize)]
pub struct ActionPath {
    name: String,
    action: String,
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A base64 field, with an error naming it.
fn unb64(field: &str, text: &str) -> Result<Vec<u8>, Error> {
    STANDARD
        .decode(text.trim())
        .map_err(|_| Error::invalid(format!("{field} is not valid base64")))
}

fn context(raw: &Option<String>) -> Result<Vec<u8>, Error> {
    raw.as_deref()
        .map(|c| unb64("context", c))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// An action's JSON body (an empty body is `{}`), unknown fields refused.
fn body<T: DeserializeOwned>(raw: &Bytes) -> Result<T, Error> {
    let text: &[u8] = if raw.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        raw
    };
    serde_json::from_slice(text).map_err(|e| Error::invalid(format!("invalid request body: {e}")))
}

fn ok(value: serde_json::Value) -> Response {
    axum::Json(value).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    purpose: Purpose,
    algorithm: Option<String>,
    rotation_period_secs: Option<u64>,
}

pub async fn create_key(
    State(state): State<KmsState>,
    Caller { who, project }: Caller,
    ApiJson(req): ApiJson<CreateKey>,
) -> ApiResult<Response> {
    let algorithm = Algorithm::for_purpose(req.purpose, req.algorithm.as_deref())?;
    let info = state
        .create_key(
            &who,
            &project,
            &req.name,
            algorithm,
            req.rotation_period_secs,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(info)).into_response())
}

pub async fn list_keys(
    State(state): State<KmsState>,
    Caller { who, project }: Caller,
) -> ApiResult<Response> {
    Ok(ok(json!({ "keys": state.keys(&who, &project).await? })))
}

pub async fn describe_key(
    State(state): State<KmsState>,
    Caller { who, project }: Caller,
    Path(NamePath { name }): Path<NamePath>,
) -> ApiResult<Response> {
    Ok(axum::Json(state.key(&who, &project, &name).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleDeletion {
    days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Encrypt {
    plaintext: String,
    context: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decrypt {
    ciphertext: String,
    context: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reencrypt {
    ciphertext: String,
    context: Option<String>,
    /// Another key of the project to move the data to.
    target: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataKey {
    context: Option<String>,
    bytes: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifySignature {
    message: String,
    signature: String,
    version: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyMac {
    message: String,
    mac: String,
    version: Option<u32>,
}

pub async fn key_action(
    State(state): State<KmsState>,
    Caller { who, project }: Caller,
    Path(ActionPath { name, action }): Path<ActionPath>,
    raw: Bytes,
) -> ApiResult<Response> {
    let kms = &state.service;
    let response = match action.as_str() {
        "rotate" => {
            body::<Empty>(&raw)?;
            ok(json!(kms.rotate(&who, &project, &name).await?))
        }
        "disable" | "enable" => {
            body::<Empty>(&raw)?;
            ok(json!(
                kms.set_enabled(&who, &project, &name, action == "enable")
                    .await?
            ))
        }
        "allow-end-users" | "deny-end-users" => {
            body::<Empty>(&raw)?;
            let allowed = action == "allow-end-users";
            ok(json!(
                kms.set_end_user_access(&who, &project, &name, allowed)
                    .await?
            ))
        }
        "schedule-deletion" => {
            let req: ScheduleDeletion = body(&raw)?;
            ok(json!(
                kms.schedule_deletion(&who, &project, &name, req.days)
                    .await?
            ))
        }
        "cancel-deletion" => {
            body::<Empty>(&raw)?;
            ok(json!(kms.cancel_deletion(&who, &project, &name).await?))
        }
        "encrypt" => {
            let req: Encrypt = body(&raw)?;
            let plaintext = unb64("plaintext", &req.plaintext)?;
            let sealed = kms
                .encrypt(&who, &project, &name, &plaintext, &context(&req.context)?)
                .await?;
            ok(
                json!({ "ciphertext": b64(&sealed.ciphertext), "key": sealed.key, "version": sealed.version }),
            )
        }
        "decrypt" | "decrypt-datakey" => {
            let req: Decrypt = body(&raw)?;
            let ciphertext = unb64("ciphertext", &req.ciphertext)?;
            Ciphertext::expect_key(&ciphertext, &name)?;
            let (plaintext, key, version) = kms
                .decrypt(&who, &project, &ciphertext, &context(&req.context)?)
                .await?;
            ok(json!({ "plaintext": b64(&plaintext), "key": key, "version": version }))
        }
        "reencrypt" => {
            let req: Reencrypt = body(&raw)?;
            let ciphertext = unb64("ciphertext", &req.ciphertext)?;
            Ciphertext::expect_key(&ciphertext, &name)?;
            let sealed = kms
                .reencrypt(
                    &who,
                    &project,
                    &ciphertext,
                    &context(&req.context)?,
                    req.target.as_deref(),
                )
                .await?;
            ok(
                json!({ "ciphertext": b64(&sealed.ciphertext), "key": sealed.key, "version": sealed.version }),
            )
        }
        "datakey" => {
            let req: DataKey = body(&raw)?;
            let (plaintext, sealed) = kms
                .data_key(
                    &who,
                    &project,
                    &name,
                    &context(&req.context)?,
                    req.bytes.unwrap_or(32),
                )
                .await?;
            ok(json!({
                "plaintext": b64(&plaintext),
                "ciphertext": b64(&sealed.ciphertext),
                "key": sealed.key,
                "version": sealed.version,
            }))
        }
        "sign" => {
            let req: Message = body(&raw)?;
            let message = unb64("message", &req.message)?;
            let (signature, version) = kms.sign(&who, &project, &name, &message).await?;
            ok(json!({ "signature": b64(&signature), "key": name, "version": version }))
        }
        "verify" => {
            let req: VerifySignature = body(&raw)?;
            let message = unb64("message", &req.message)?;
            let signature = unb64("signature", &req.signature)?;
            let valid = kms
                .verify(&who, &project, &name, &message, &signature, req.version)
                .await?;
            ok(json!({ "valid": valid }))
        }
        "mac" => {
            let req: Message = body(&raw)?;
            let message = unb64("message", &req.message)?;
            let (mac, version) = kms.mac(&who, &project, &name, &message).await?;
            ok(json!({ "mac": b64(&mac), "key": name, "version": version }))
        }
        "verify-mac" => {
            let req: VerifyMac = body(&raw)?;
            let message = unb64("message", &req.message)?;
            let mac = unb64("mac", &req.mac)?;
            let valid = kms
                .verify_mac(&who, &project, &name, &message, &mac, req.version)
                .await?;
            ok(json!({ "valid": valid }))
        }
        other => {
            return Err(Error::not_found(format!(
                "key action {other:?} (one of rotate, disable, enable, allow-end-users, deny-end-users, schedule-deletion, cancel-deletion, encrypt, decrypt, reencrypt, datakey, decrypt-datakey, sign, verify, mac, verify-mac)"
            ))
            .into());
        }
    };
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    /// Text; or `value_base64` for bytes.
    value: Option<String>,
    value_base64: Option<String>,
}

pub async fn put_secret(
    State(state): State<KmsState>,
    Caller { who, project }: Caller,
    Path(NamePath { name }): Path<NamePath>,
    ApiJson(req): ApiJson<PutSecret>,
) -> ApiResult<Response> {
    let value = match (req.value, req.value_base64) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(encoded)) => unb64("value_base64", &encoded)?,
        _ => return Err(Error::invalid("give value (text) or value_base64, exactly one").into()),
    };
    let version = state.put_secret(&who, &project, &name, &value).await?;
    Ok(ok(json!({ "name": name, "version": version })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretQuery {
    version: Option<u32>,
}

pub async fn get_secret(
    State(state): State<KmsState>,
    Caller { who, project }: Caller,
    Path(NamePath { name }): Path<NamePath>,
    ApiQuery(query): ApiQuery<SecretQuery>,
) -> ApiResult<Response> {
    let (value, version) = state.secret(&who, &project, &name, query.version).await?;
    Ok(ok(match std::str::from_utf8(&value) {
        Ok(text) => json!({ "name": name, "version": version, "value": text }),
        Err(_) => json!({ "name": name, "version": version, "value_base64": b64(&value) }),
    }))
}

pub async fn delete_secret(
    State(state): State<KmsState>,
    Caller { who, project }: Caller,
    Path(NamePath { name }): Path<NamePath>,
) -> ApiResult<Response> {
    let deleted = state.delete_secret(&who, &project, &name).await?;
    Ok(ok(json!({ "deleted": deleted })))
}

pub async fn list_secrets(
    State(state): State<KmsState>,
    Caller { who, project }: Caller,
) -> ApiResult<Response> {
    Ok(ok(
        json!({ "secrets": state.secrets(&who, &project).await? }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    from: Option<u64>,
    to: Option<u64>,
    key: Option<String>,
    after: Option<u64>,
    limit: Option<usize>,
}

pub async fn audit(
    State(state): State<KmsState>,
    Caller { who, project }: Caller,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> ApiResult<Response> {
    let query = AuditQuery {
        from: params.from,
        to: params.to,
        key: params.key,
        after: params.after,
        limit: params.limit.unwrap_or(100),
    };
    Ok(ok(json!(state.audit(&who, &project, &query).await?)))
}

pub async fn verify_audit(
    State(state): State<KmsState>,
    Caller { who, project }: Caller,
) -> ApiResult<Response> {
    Ok(ok(match state.verify_audit(&who, &project).await? {
        Ok(records) => json!({ "valid": true, "records": records }),
        Err(broken) => json!({ "valid": false, "broken_at": broken.seq, "reason": broken.reason }),
    }))
}
