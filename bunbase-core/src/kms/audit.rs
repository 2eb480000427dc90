//! The tamper-evident audit log: every record carries the hash of the one
//! before it, so changing, removing or reordering any record breaks the
//! chain from there on, and [`verify`] says where.
//!
//! Records hold who, what and the result — never plaintext, key material
//! or secret values.

use serde::{Deserialize, Serialize};

use super::crypto::sha256;

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened (before it is chained).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Milliseconds since the epoch.
    pub at: u64,
    pub project: String,
    /// The principal's subject.
    pub caller: String,
    /// The key or secret name, when the operation had one.
    pub key: Option<String>,
    pub operation: String,
    /// `ok`, or the error code.
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// Where and why a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    pub seq: u64,
    pub reason: String,
}

/// The hash of a record: SHA-256 over its fields, each length-prefixed so
/// no two different records encode alike.
pub fn record_hash(seq: u64, entry: &AuditEntry, prev_hash: &str) -> String {
    let mut data = Vec::with_capacity(128);
    let mut field = |bytes: &[u8]| {
        data.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        data.extend_from_slice(bytes);
    };
    field(prev_hash.as_bytes());
    field(&seq.to_be_bytes());
    field(&entry.at.to_be_bytes());
    field(entry.project.as_bytes());
    field(entry.caller.as_bytes());
    match &entry.key {
        Some(key) => {
            field(b"1");
            field(key.as_bytes());
        }
        None => field(b"0"),
    }
    field(entry.operation.as_bytes());
    field(entry.result.as_bytes());
    hex::encode(sha256(&data))
}

/// The record that follows `prev` (or starts the log).
pub fn chain(prev: Option<&AuditRecord>, entry: AuditEntry) -> AuditRecord {
    let (seq, prev_hash) = match prev {
        Some(p) => (p.seq + 1, p.hash.clone()),
        None => (1, GENESIS.to_string()),
    };
    let hash = record_hash(seq, &entry, &prev_hash);
    AuditRecord {
        seq,
        entry,
        prev_hash,
        hash,
    }
}

/// Checks `records` (in order) as a chain continuing `after` (the hash of
/// the record before the first, [`GENESIS`] for the start of the log).
pub fn verify(records: &[AuditRecord], after: (u64, &str)) -> Result<(), ChainBreak> {
    let (mut seq, mut prev) = (after.0, after.1.to_string());
    for record in records {
        let broken = |reason: &str| ChainBreak {
            seq: record.seq,
            reason: reason.to_string(),
        };
        if record.seq != seq + 1 {
            return Err(broken(&format!(
                "expected record {} here: records are missing or reordered",
                seq + 1
            )));
        }
        if record.prev_hash != prev {
            return Err(broken("it does not follow the record before it"));
        }
        if record_hash(record.seq, &record.entry, &record.prev_hash) != record.hash {
            return Err(broken("its contents do not match its hash: it was altered"));
        }
        seq = record.seq;
        prev = record.hash.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64) -> AuditEntry {
        AuditEntry {
            at: 1_000 + i,
            project: "alpha".into(),
            caller: "svc".into(),
            key: Some(format!("k{i}")),
            operation: "encrypt".into(),
            result: "ok".into(),
        }
    }

    fn log(n: u64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let next = chain(out.last(), entry(i));
            out.push(next);
        }
        out
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let records = log(5);
        assert_eq!(records[0].prev_hash, GENESIS);
        assert!(verify(&records, (0, GENESIS)).is_ok());
        // A later slice verifies against the record before it.
        assert!(verify(&records[2..], (2, &records[1].hash)).is_ok());
    }

    #[test]
    fn any_tampering_is_found_where_it_happened() {
        let records = log(5);
        let mut altered = records.clone();
        altered[2].entry.result = "denied".into();
        assert_eq!(verify(&altered, (0, GENESIS)).unwrap_err().seq, 3);

        let mut removed = records.clone();
        removed.remove(1);
        assert_eq!(verify(&removed, (0, GENESIS)).unwrap_err().seq, 3);

        let mut swapped = records.clone();
        swapped.swap(3, 4);
        assert_eq!(verify(&swapped, (0, GENESIS)).unwrap_err().seq, 5);

        // Recomputing one record's hash after editing it still breaks the
        // link to the next one.
        let mut rehashed = records.clone();
        rehashed[1].entry.caller = "mallory".into();
        rehashed[1].hash = record_hash(2, &rehashed[1].entry, &rehashed[1].prev_hash);
        let broken = verify(&rehashed, (0, GENESIS)).unwrap_err();
        assert_eq!(broken.seq, 3);
    }

    #[test]
    fn fields_cannot_be_shifted_between_each_other() {
        let a = AuditEntry {
            caller: "ab".into(),
            project: "c".into(),
            ..entry(0)
        };
        let b = AuditEntry {
            caller: "a".into(),
            project: "bc".into(),
            ..entry(0)
        };
        assert_ne!(record_hash(1, &a, GENESIS), record_hash(1, &b, GENESIS));
        let none = AuditEntry {
            key: None,
            ..entry(0)
        };
        let empty = AuditEntry {
            key: Some(String::new()),
            ..entry(0)
        };
        assert_ne!(
            record_hash(1, &none, GENESIS),
            record_hash(1, &empty, GENESIS)
        );
    }
}
