//! A number kept in a NATS KV key and changed with compare-and-set: how
//! sender replicas share state (each token's rate schedule in
//! [`crate::budget`], each chat's last send in [`crate::chat_spacing`]).
//! The numbers are wall-clock Unix microseconds ([`now_us`]), so replicas
//! need synchronised clocks (NTP).

use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv::{self, CreateErrorKind, UpdateErrorKind};
use bytes::Bytes;

/// A key-value operation that NATS did not complete.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("reading key {key}")]
    Read {
        key: String,
        #[source]
        source: kv::EntryError,
    },
    #[error("creating key {key}")]
    Create {
        key: String,
        #[source]
        source: kv::CreateError,
    },
    #[error("updating key {key}")]
    Update {
        key: String,
        #[source]
        source: kv::UpdateError,
    },
}

/// Now, in Unix microseconds.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64
}

/// What a key holds: its number (`None` if unreadable) and the revision a
/// write must expect.
pub struct Read {
    pub number: Option<u64>,
    pub revision: u64,
}

/// The key's number, or `None` if the key holds nothing.
pub async fn read(kv: &kv::Store, key: &str) -> Result<Option<Read>, KvError> {
    let entry = kv.entry(key).await.map_err(|source| KvError::Read {
        key: key.to_owned(),
        source,
    })?;
    Ok(entry.map(|entry| Read {
        number: std::str::from_utf8(&entry.value)
            .ok()
            .and_then(|v| v.parse().ok()),
        revision: entry.revision,
    }))
}

/// Writes `number` if the key is still as read (`None`: it held nothing);
/// false if another writer came first.
pub async fn write_if_unchanged(
    kv: &kv::Store,
    key: &str,
    number: u64,
    read: Option<&Read>,
) -> Result<bool, KvError> {
    let value = Bytes::from(number.to_string());
    match read {
        Some(read) => match kv.update(key, value, read.revision).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(source) => Err(KvError::Update {
                key: key.to_owned(),
                source,
            }),
        },
        None => match kv.create(key, value).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(false),
            Err(source) => Err(KvError::Create {
                key: key.to_owned(),
                source,
            }),
        },
    }
}
