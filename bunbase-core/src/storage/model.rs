//! Storage's types: buckets, objects, uploads, listings, usage, and the
//! validation of names and keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::id::ProjectId;

/// Longest object key, in bytes (as S3).
pub const MAX_KEY_BYTES: usize = 1024;
/// Most user metadata, in bytes of names and values together (as S3).
pub const MAX_METADATA_BYTES: usize = 2048;
/// Smallest part of a multipart upload but the last (as S3).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Highest part number (as S3).
pub const MAX_PART_NUMBER: u32 = 10_000;

/// A bucket of one project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub project: ProjectId,
    pub name: String,
    #[serde(flatten)]
    pub settings: BucketSettings,
    pub created_at: u64,
    pub updated_at: u64,
}

/// What a bucket's owner decides about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketSettings {
    /// Anyone may read its objects, without a credential.
    #[serde(default)]
    pub public: bool,
    /// Content types an upload may declare (`image/png`, `image/*`); empty:
    /// any.
    #[serde(default)]
    pub allowed_content_types: Vec<String>,
    /// Largest object, in bytes; none: the instance's limit.
    #[serde(default)]
    pub max_object_size: Option<u64>,
    /// What end users and publishable keys may do (rules over `auth`,
    /// `resource` (the stored object) and `request` (the incoming one)).
    #[serde(default)]
    pub rules: BucketRules,
}

/// A bucket's rules, as their source; no rule: closed to end users and
/// publishable keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<String>,
}

/// A stored object's description (its bytes are the blob `blob`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectInfo {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// Hex MD5 of the bytes, or of the parts' MD5s with `-<parts>` (as S3).
    pub etag: String,
    pub content_type: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Who stored it (an end user's uid, a key's id), as rules see it.
    pub owner: Option<String>,
    /// Milliseconds since the epoch.
    pub last_modified: u64,
    /// Where its bytes are in the blob store.
    #[serde(skip)]
    pub blob: String,
}

/// An object's place: bucket and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    pub bucket: String,
    pub key: String,
}

impl ObjectPath {
    /// A validated place.
    pub fn new(bucket: &str, key: &str) -> Result<ObjectPath, Error> {
        validate_bucket_name(bucket)?;
        validate_key(key)?;
        Ok(ObjectPath {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

/// A listing's question: keys under `prefix`, after `cursor`, grouped into
/// folders at `delimiter`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// The `next` of the previous page (the last key or folder it held).
    pub cursor: Option<String>,
    pub limit: usize,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListPage {
    pub objects: Vec<ObjectInfo>,
    /// Folders: each distinct `prefix + …delimiter` under the prefix.
    pub prefixes: Vec<String>,
    /// Where the next page starts; none: this was the last.
    pub next: Option<String>,
}

/// A project's stored data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub bytes: u64,
    pub objects: u64,
}

/// A project's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub max_bytes: u64,
    pub max_objects: u64,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    pub id: String,
    pub bucket: String,
    pub key: String,
    pub content_type: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub owner: Option<String>,
    pub created_at: u64,
    /// The blob the object will be, and the blob store's handle of the
    /// upload.
    #[serde(skip)]
    pub blob: String,
    #[serde(skip)]
    pub token: String,
}

/// A received part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub number: u32,
    pub size: u64,
    /// Hex MD5 of the part.
    pub etag: String,
    /// What the blob store needs to assemble it.
    #[serde(skip)]
    pub receipt: String,
}

/// A project's S3 credential: the secret is sealed by the storage secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Credential {
    pub access_key_id: String,
    pub project: ProjectId,
    pub sealed_secret: Vec<u8>,
    pub created_by: String,
    pub created_at: u64,
}

/// How a write treats an object already at its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutCondition {
    /// Replace it.
    Any,
    /// Store only if there is none (`If-None-Match: *`).
    IfAbsent,
}

/// Bucket names as S3 takes them: 3–63 of `a-z 0-9 . -`, starting and
/// ending with a letter or digit, no `..`.
pub fn validate_bucket_name(name: &str) -> Result<(), Error> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let edges = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(3..=63).contains(&name.len())
        || !ok_chars
        || !edges(name.bytes().next())
        || !edges(name.bytes().last())
        || name.contains("..")
    {
        return Err(Error::invalid(format!(
            "bucket name {name:?} must be 3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit"
        )));
    }
    Ok(())
}

/// Object keys: UTF-8 (a `&str` already is), 1 to 1024 bytes, no NUL or
/// other control characters, no `.` or `..` segment. Keys never name a file
/// (the file store keeps blobs by id), so this is for clients' sake: a key
/// means the same thing on every store and in every URL.
pub fn validate_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::invalid(format!(
            "object keys are 1 to {MAX_KEY_BYTES} bytes"
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(Error::invalid(
            "object keys may not contain NUL or other control characters",
        ));
    }
    if key
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
    {
        return Err(Error::invalid(
            "object keys may not contain '.' or '..' segments",
        ));
    }
    Ok(())
}

/// User metadata: names are lowercase `a-z 0-9 -_`, values printable ASCII
/// (they travel as HTTP headers), at most 2 KiB together.
pub fn validate_metadata(metadata: &BTreeMap<String, String>) -> Result<(), Error> {
    let mut total = 0;
    for (name, value) in metadata {
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(Error::invalid(format!(
                "metadata name {name:?} must be lowercase a-z, 0-9, '-' and '_'"
            )));
        }
        if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(Error::invalid(format!(
                "metadata {name:?} must be printable ASCII"
            )));
        }
        total += name.len() + value.len();
    }
    if total > MAX_METADATA_BYTES {
        return Err(Error::invalid(format!(
            "metadata is at most {MAX_METADATA_BYTES} bytes"
        )));
    }
    Ok(())
}

/// A content type as sent: `type/subtype` with optional parameters.
pub fn validate_content_type(content_type: &str) -> Result<(), Error> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let valid = essence.split_once('/').is_some_and(|(t, s)| {
        let token = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        token(t) && token(s)
    });
    if !valid || content_type.len() > 256 || !content_type.is_ascii() {
        return Err(Error::invalid(format!(
            "content type {content_type:?} is not of the form type/subtype"
        )));
    }
    Ok(())
}

impl BucketSettings {
    /// Whether the bucket takes uploads of `content_type`.
    pub fn accepts(&self, content_type: &str) -> bool {
        if self.allowed_content_types.is_empty() {
            return true;
        }
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        self.allowed_content_types.iter().any(|allowed| {
            let allowed = allowed.to_ascii_lowercase();
            match allowed.strip_suffix("/*") {
                Some(kind) => essence.split_once('/').is_some_and(|(t, _)| t == kind),
                None => allowed == essence,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_refuse_traversal_nul_and_length() {
        for good in [
            "a",
            "users/u1/avatar.png",
            "a..b",
            "日本/ファイル.txt",
            "a//b",
            "/lead",
        ] {
            validate_key(good).unwrap();
        }
        let long = "x".repeat(MAX_KEY_BYTES + 1);
        for bad in [
            "",
            "../etc/passwd",
            "a/../b",
            "a/..",
            "./a",
            "a\0b",
            "a\nb",
            long.as_str(),
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bucket_names_follow_s3() {
        for good in ["abc", "my-bucket.v2", "0aa"] {
            validate_bucket_name(good).unwrap();
        }
        for bad in ["ab", "Abc", "-abc", "abc-", "a..b", "a_b", &"a".repeat(64)] {
            assert!(validate_bucket_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn content_types_match_exactly_or_by_kind() {
        let settings = BucketSettings {
            allowed_content_types: vec!["image/*".into(), "application/pdf".into()],
            ..Default::default()
        };
        assert!(settings.accepts("image/png"));
        assert!(settings.accepts("Image/JPEG; q=1"));
        assert!(settings.accepts("application/pdf"));
        assert!(!settings.accepts("text/plain"));
        assert!(!settings.accepts("imagex/png"));
        assert!(BucketSettings::default().accepts("anything/else"));
    }

    #[test]
    fn metadata_is_header_safe() {
        let mut m = BTreeMap::new();
        m.insert("color".to_string(), "blue".to_string());
        validate_metadata(&m).unwrap();
        m.insert("Bad Name".to_string(), "x".to_string());
        assert!(validate_metadata(&m).is_err());
        let mut m = BTreeMap::new();
        m.insert("x".to_string(), "line\nbreak".to_string());
        assert!(validate_metadata(&m).is_err());
    }
}
