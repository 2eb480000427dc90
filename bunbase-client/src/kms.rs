//! BunKMS (`/kms`): keys, encryption, signatures, MACs, secrets, audit.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bunbase_core::Error;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::transport::{Client, segment};

pub struct KmsClient {
    client: Client,
}

/// A key as BunKMS describes it (never its material).
pub use bunbase_core::kms::KeyInfo as KmsKey;
/// An encryption's result: the self-describing ciphertext to store.
pub use bunbase_core::kms::Sealed;
/// A secret's name and history, never its value.
pub use bunbase_core::kms::SecretInfo as SecretEntry;
/// One version of a key.
pub use bunbase_core::kms::VersionInfo as KmsKeyVersion;

/// A data key: use `plaintext` now and forget it; store `sealed`.
#[derive(Debug, Clone)]
pub struct DataKey {
    pub plaintext: Vec<u8>,
    pub sealed: Sealed,
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn field_bytes(value: &Value, field: &str) -> Result<Vec<u8>, Error> {
    value[field]
        .as_str()
        .and_then(|s| STANDARD.decode(s).ok())
        .ok_or_else(|| Error::internal(format!("unexpected response: no base64 {field}")))
}

fn sealed(value: &Value) -> Result<Sealed, Error> {
    Ok(Sealed {
        ciphertext: field_bytes(value, "ciphertext")?,
        key: value["key"].as_str().unwrap_or_default().to_string(),
        version: value["version"].as_u64().unwrap_or(0) as u32,
    })
}

impl Client {
    /// BunKMS (`/kms`): keys, encryption, signatures, secrets, audit.
    pub fn kms(&self) -> KmsClient {
        KmsClient::new(self.clone())
    }
}

impl KmsClient {
    pub(crate) fn new(client: Client) -> KmsClient {
        KmsClient { client }
    }

    fn url(&self, project: &str, rest: &str) -> String {
        self.client
            .url(&format!("/kms/v1/projects/{}/{rest}", segment(project)))
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, Error> {
        self.client.send_json(request).await
    }

    async fn action(
        &self,
        project: &str,
        key: &str,
        action: &str,
        body: Value,
    ) -> Result<Value, Error> {
        let url = self.url(project, &format!("keys/{}/{action}", segment(key)));
        self.send(self.client.http.post(url).json(&body)).await
    }

    /// Creates a key: `purpose` is encrypt, sign or mac; `algorithm`
    /// defaults to AES-256-GCM, Ed25519 or HMAC-SHA256.
    pub async fn create_key(
        &self,
        project: &str,
        name: &str,
        purpose: &str,
        algorithm: Option<&str>,
    ) -> Result<KmsKey, Error> {
        let mut body = json!({ "name": name, "purpose": purpose });
        if let Some(algorithm) = algorithm {
            body["algorithm"] = json!(algorithm);
        }
        self.send(self.client.http.post(self.url(project, "keys")).json(&body))
            .await
    }

    pub async fn keys(&self, project: &str) -> Result<Vec<KmsKey>, Error> {
        #[derive(Deserialize)]
        struct Keys {
            keys: Vec<KmsKey>,
        }
        let keys: Keys = self
            .send(self.client.http.get(self.url(project, "keys")))
            .await?;
        Ok(keys.keys)
    }

    pub async fn key(&self, project: &str, name: &str) -> Result<KmsKey, Error> {
        let url = self.url(project, &format!("keys/{}", segment(name)));
        self.send(self.client.http.get(url)).await
    }

    /// rotate, disable, enable, cancel-deletion.
    pub async fn manage(&self, project: &str, name: &str, action: &str) -> Result<KmsKey, Error> {
        let value = self.action(project, name, action, json!({})).await?;
        serde_json::from_value(value)
            .map_err(|e| Error::internal(format!("unexpected response: {e}")))
    }

    pub async fn schedule_deletion(
        &self,
        project: &str,
        name: &str,
        days: Option<u32>,
    ) -> Result<KmsKey, Error> {
        let body = match days {
            Some(days) => json!({ "days": days }),
            None => json!({}),
        };
        let value = self
            .action(project, name, "schedule-deletion", body)
            .await?;
        serde_json::from_value(value)
            .map_err(|e| Error::internal(format!("unexpected response: {e}")))
    }

    pub async fn encrypt(
        &self,
        project: &str,
        key: &str,
        plaintext: &[u8],
        context: &[u8],
    ) -> Result<Sealed, Error> {
        let value = self
            .action(
                project,
                key,
                "encrypt",
                json!({ "plaintext": b64(plaintext), "context": b64(context) }),
            )
            .await?;
        sealed(&value)
    }

    /// The plaintext; the key is the one named inside the ciphertext.
    pub async fn decrypt(
        &self,
        project: &str,
        key: &str,
        ciphertext: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let value = self
            .action(
                project,
                key,
                "decrypt",
                json!({ "ciphertext": b64(ciphertext), "context": b64(context) }),
            )
            .await?;
        field_bytes(&value, "plaintext")
    }

    /// Moves a ciphertext to the newest version (of `target`, or its key)
    /// without the plaintext leaving BunKMS.
    pub async fn reencrypt(
        &self,
        project: &str,
        key: &str,
        ciphertext: &[u8],
        context: &[u8],
        target: Option<&str>,
    ) -> Result<Sealed, Error> {
        let mut body = json!({ "ciphertext": b64(ciphertext), "context": b64(context) });
        if let Some(target) = target {
            body["target"] = json!(target);
        }
        sealed(&self.action(project, key, "reencrypt", body).await?)
    }

    pub async fn data_key(
        &self,
        project: &str,
        key: &str,
        context: &[u8],
    ) -> Result<DataKey, Error> {
        let value = self
            .action(project, key, "datakey", json!({ "context": b64(context) }))
            .await?;
        Ok(DataKey {
            plaintext: field_bytes(&value, "plaintext")?,
            sealed: sealed(&value)?,
        })
    }

    pub async fn sign(&self, project: &str, key: &str, message: &[u8]) -> Result<Vec<u8>, Error> {
        let value = self
            .action(project, key, "sign", json!({ "message": b64(message) }))
            .await?;
        field_bytes(&value, "signature")
    }

    pub async fn verify(
        &self,
        project: &str,
        key: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, Error> {
        let value = self
            .action(
                project,
                key,
                "verify",
                json!({ "message": b64(message), "signature": b64(signature) }),
            )
            .await?;
        Ok(value["valid"].as_bool().unwrap_or(false))
    }

    pub async fn mac(&self, project: &str, key: &str, message: &[u8]) -> Result<Vec<u8>, Error> {
        let value = self
            .action(project, key, "mac", json!({ "message": b64(message) }))
            .await?;
        field_bytes(&value, "mac")
    }

    pub async fn verify_mac(
        &self,
        project: &str,
        key: &str,
        message: &[u8],
        mac: &[u8],
    ) -> Result<bool, Error> {
        let value = self
            .action(
                project,
                key,
                "verify-mac",
                json!({ "message": b64(message), "mac": b64(mac) }),
            )
            .await?;
        Ok(value["valid"].as_bool().unwrap_or(false))
    }

    /// Stores a new version of a secret; its number.
    pub async fn put_secret(&self, project: &str, name: &str, value: &[u8]) -> Result<u32, Error> {
        let url = self.url(project, &format!("secrets/{}", segment(name)));
        let answer: Value = self
            .send(
                self.client
                    .http
                    .put(url)
                    .json(&json!({ "value_base64": b64(value) })),
            )
            .await?;
        Ok(answer["version"].as_u64().unwrap_or(0) as u32)
    }

    /// A secret's value and version (the latest, or `version`).
    pub async fn secret(
        &self,
        project: &str,
        name: &str,
        version: Option<u32>,
    ) -> Result<(Vec<u8>, u32), Error> {
        let mut url = self.url(project, &format!("secrets/{}", segment(name)));
        if let Some(v) = version {
            url.push_str(&format!("?version={v}"));
        }
        let answer: Value = self.send(self.client.http.get(url)).await?;
        let value = match answer["value"].as_str() {
            Some(text) => text.as_bytes().to_vec(),
            None => field_bytes(&answer, "value_base64")?,
        };
        Ok((value, answer["version"].as_u64().unwrap_or(0) as u32))
    }

    pub async fn secrets(&self, project: &str) -> Result<Vec<SecretEntry>, Error> {
        #[derive(Deserialize)]
        struct Secrets {
            secrets: Vec<SecretEntry>,
        }
        let list: Secrets = self
            .send(self.client.http.get(self.url(project, "secrets")))
            .await?;
        Ok(list.secrets)
    }

    pub async fn delete_secret(&self, project: &str, name: &str) -> Result<bool, Error> {
        let url = self.url(project, &format!("secrets/{}", segment(name)));
        let answer: Value = self.send(self.client.http.delete(url)).await?;
        Ok(answer["deleted"].as_bool().unwrap_or(false))
    }

    /// Checks the project's audit chain: `Ok(records)` or the first broken
    /// record's sequence number and why.
    pub async fn verify_audit(&self, project: &str) -> Result<Result<u64, (u64, String)>, Error> {
        let answer: Value = self
            .send(self.client.http.get(self.url(project, "audit/verify")))
            .await?;
        Ok(if answer["valid"].as_bool() == Some(true) {
            Ok(answer["records"].as_u64().unwrap_or(0))
        } else {
            Err((
                answer["broken_at"].as_u64().unwrap_or(0),
                answer["reason"].as_str().unwrap_or_default().to_string(),
            ))
        })
    }
}

/// Core's [`Keys`](bunbase_core::kms::Keys) over HTTP: what a platform
/// service (Bundoc in compose) uses to get its data keys from `bun-kms`.
/// `token` is a platform token (`*:rwa:…` in BUNKMS_TOKENS), valid in
/// every project.
pub struct RemoteKeys {
    client: Client,
    kms: KmsClient,
}

impl RemoteKeys {
    pub fn new(url: &str, token: &str) -> Result<RemoteKeys, Error> {
        let client = Client::new(url)?.with_token(token);
        Ok(RemoteKeys {
            kms: client.kms(),
            client,
        })
    }
}

#[async_trait::async_trait]
impl bunbase_core::kms::Keys for RemoteKeys {
    async fn check(&self) -> Result<(), Error> {
        self.client.health().await
    }

    async fn ensure_key(&self, project: &bunbase_core::ProjectId, key: &str) -> Result<(), Error> {
        match self
            .kms
            .create_key(project.as_str(), key, "encrypt", None)
            .await
        {
            Ok(_) | Err(Error::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn generate_data_key(
        &self,
        project: &bunbase_core::ProjectId,
        key: &str,
        context: &[u8],
    ) -> Result<bunbase_core::kms::DataKey, Error> {
        let data_key = self.kms.data_key(project.as_str(), key, context).await?;
        Ok(bunbase_core::kms::DataKey {
            plaintext: zeroize::Zeroizing::new(data_key.plaintext),
            sealed: data_key.sealed.ciphertext,
        })
    }

    async fn decrypt_data_key(
        &self,
        project: &bunbase_core::ProjectId,
        sealed: &[u8],
        context: &[u8],
    ) -> Result<bunbase_core::kms::crypto::Material, Error> {
        let parsed = bunbase_core::kms::ciphertext::Ciphertext::decode(sealed)?;
        let plaintext = self
            .kms
            .decrypt(project.as_str(), &parsed.key, sealed, context)
            .await?;
        Ok(zeroize::Zeroizing::new(plaintext))
    }
}
