//! Reads: summaries, histories, status updates, the quarantine, a fresh verify, and
//! what the store settled and takes on disk.
//!
//! A read sees what is durable: writes reach sled only once durable. Opened for offline
//! inspection ([`OnCorrupt::Report`](crate::OnCorrupt::Report)), reads also leave out the
//! values that do not decode and show the repairs an agent would make (the overlay).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use uuid::Uuid;

use super::scan::{corrupt_value, scan};
use super::Store;
use crate::codec::{self, Stored};
use crate::error::{Corrupt, StoreError};
use crate::keys::{self, META, PHASE, STATUS, SUMMARY};
use crate::record::{AgentMeta, PhaseRecord, Quarantined, StatusRecord, Summary};
use crate::wal;

impl Store {
    /// Every container's newest state, in container id order.
    pub fn containers(&self) -> Result<Vec<Summary>, StoreError> {
        let stored: Vec<Summary> = self.decode_prefix(&[SUMMARY])?;
        let Some(overlay) = &self.overlay else {
            return Ok(stored);
        };
        let mut all: BTreeMap<Uuid, Summary> =
            stored.into_iter().map(|s| (s.container_id, s)).collect();
        all.extend(overlay.summaries.clone());
        Ok(all.into_values().collect())
    }

    /// One container's newest state.
    pub fn container(&self, id: Uuid) -> Result<Option<Summary>, StoreError> {
        if let Some(s) = self.overlay.as_ref().and_then(|o| o.summaries.get(&id)) {
            return Ok(Some(s.clone()));
        }
        let key = keys::container(SUMMARY, id);
        if self.skipped(&key) {
            return Ok(None);
        }
        match self.records.get(&key)? {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The newest sequence number up to which every record can be read: records are made
    /// readable by their writers as each becomes durable, not in order, so a reader that
    /// resumes from a sequence number (an event stream) reads only up to this one and
    /// misses none that become readable later.
    pub fn settled_seq(&self) -> u64 {
        let pending = self.flusher.pending();
        match pending.first_unsettled() {
            Some(seq) => seq.saturating_sub(1),
            // Read under the pending lock, under which every sequence number is taken.
            None => self.next_seq.load(Ordering::Relaxed).saturating_sub(1),
        }
    }

    /// One container's phase history, oldest first.
    pub fn history(&self, id: Uuid) -> Result<Vec<PhaseRecord>, StoreError> {
        let mut history: Vec<PhaseRecord> = self.decode_prefix(&keys::container(PHASE, id))?;
        if let Some(extra) = self.overlay.as_ref().and_then(|o| o.history.get(&id)) {
            history.extend(extra.iter().cloned());
            history.sort_by_key(|r| r.seq);
        }
        Ok(history)
    }

    /// One container's status updates, oldest first.
    pub fn statuses(&self, id: Uuid) -> Result<Vec<StatusRecord>, StoreError> {
        self.decode_prefix(&keys::container(STATUS, id))
    }

    /// The quarantined values, with why each was set aside.
    pub fn quarantined(&self) -> Result<Vec<Corrupt>, StoreError> {
        let mut out = Vec::new();
        for entry in self.quarantine.iter() {
            let (key, bytes) = entry?;
            out.push(match codec::decode::<Quarantined>(&bytes) {
                Ok(q) => Corrupt {
                    key: keys::describe(&q.key),
                    raw_key: q.key,
                    reason: q.reason,
                    bytes: q.bytes,
                },
                Err(e) => Corrupt {
                    key: format!("quarantine/{}", keys::hex(&key)),
                    raw_key: key.to_vec(),
                    reason: format!("the quarantine entry itself does not decode: {e}"),
                    bytes: bytes.to_vec(),
                },
            });
        }
        Ok(out)
    }

    /// Re-reads every value and returns those that do not decode (none are moved).
    pub fn verify(&self) -> Result<Vec<Corrupt>, StoreError> {
        let mut corrupt = scan(&self.records)?.corrupt;
        if let Some(bytes) = self.records.get(META)? {
            if let Err(e) = codec::decode::<AgentMeta>(&bytes) {
                corrupt.insert(0, corrupt_value(META, &bytes, e.to_string()));
            }
        }
        Ok(corrupt)
    }

    /// Bytes the store's files take on disk: sled's and the write-ahead log's.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        let log = wal::size_on_disk(&self.path).map_err(|source| StoreError::Io {
            what: format!("measuring the write-ahead log in {}", self.path.display()),
            source,
        })?;
        Ok(self.db.size_on_disk()? + log)
    }

    fn skipped(&self, key: &[u8]) -> bool {
        self.overlay.as_ref().is_some_and(|o| o.skip.contains(key))
    }

    fn decode_prefix<T: Stored>(&self, prefix: &[u8]) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for entry in self.records.scan_prefix(prefix) {
            let (key, bytes) = entry?;
            if self.skipped(&key) {
                continue;
            }
            out.push(codec::decode(&bytes)?);
        }
        Ok(out)
    }
}
