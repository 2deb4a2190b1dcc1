//! The write-ahead API: phases, status updates, acknowledgements and purges, each staged
//! as one entry of the write-ahead log under the pending lock and returned once durable.
//!
//! Apart from reads because every write shares one discipline that no read needs: the
//! store must be writable, the seq is taken under the pending lock (so seq order is log
//! order), and nothing returns before the flusher says the entry is durable.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use uuid::Uuid;

use super::{now_ms, Store};
use crate::codec::{self, CodecError};
use crate::error::StoreError;
use crate::flush::{Pending, Ticket};
use crate::keys::{self, PHASE, STATUS, SUMMARY, TICK};
use crate::record::{Phase, PhaseRecord, StatusRecord, Summary};
use crate::wal::{Entry, Op};

/// Removes per entry of the write-ahead log when purging: about 150 KiB of keys.
const PURGE_OPS_PER_ENTRY: usize = 4096;

impl Store {
    /// Records `phase` for `container` and returns once it is durable.
    ///
    /// An `Accepted` phase starts a container; any other phase needs one, and must be
    /// allowed after the container's newest ([`Phase::may_follow`]). When this returns an
    /// error, the action the phase announces must not be taken.
    pub async fn record_phase(
        &self,
        container: Uuid,
        phase: Phase,
    ) -> Result<PhaseRecord, StoreError> {
        let (record, ticket) = self.stage_phase(container, phase)?;
        self.durable(ticket).await?;
        Ok(record)
    }

    fn writable(&self) -> Result<(), StoreError> {
        if self.overlay.is_some() {
            return Err(StoreError::NotDurable(
                "the store was opened for inspection only".into(),
            ));
        }
        match self.flusher.poisoned() {
            Some(e) => Err(StoreError::NotDurable(format!(
                "an earlier flush failed: {e}"
            ))),
            None => Ok(()),
        }
    }

    /// Checks and stages a phase; returns its record and the ticket to wait for.
    fn stage_phase(
        &self,
        container: Uuid,
        phase: Phase,
    ) -> Result<(PhaseRecord, Ticket), StoreError> {
        self.writable()?;
        let mut pending = self.flusher.pending();
        let summary_key = keys::container(SUMMARY, container);
        let previous: Option<Summary> = match pending.get(&self.records, &summary_key)? {
            Some(bytes) => Some(codec::decode(&bytes)?),
            None => None,
        };
        let newest = match &previous {
            Some(s) if matches!(s.last.phase, Phase::Decision { .. }) => {
                self.newest_not_decision(&pending, container)?
            }
            Some(s) => Some(s.last.phase.clone()),
            None => None,
        };
        if !phase.may_follow(newest.as_ref()) {
            return Err(match newest {
                None if !matches!(phase, Phase::Accepted { .. }) => {
                    StoreError::UnknownContainer(container)
                }
                _ => StoreError::Transition {
                    container,
                    from: newest.as_ref().map_or("none", Phase::name),
                    to: phase.name(),
                },
            });
        }
        let record = PhaseRecord {
            seq: self.next_seq(),
            at_ms: now_ms(),
            container_id: container,
            phase,
        };
        let summary = match (previous, &record.phase) {
            (Some(prev), _) => Summary {
                last: record.clone(),
                ..prev
            },
            (None, Phase::Accepted { task_id, .. }) => Summary {
                container_id: container,
                task_id: task_id.clone(),
                last: record.clone(),
                accepted_at_ms: record.at_ms,
            },
            (None, _) => return Err(StoreError::UnknownContainer(container)),
        };
        // Two plain inserts for sled, history first; see `repair` for why not a batch.
        let ticket = pending.stage(Entry {
            seq: record.seq,
            ops: vec![
                Op::Put {
                    key: keys::record(PHASE, container, record.seq),
                    value: codec::encode(&record)?,
                },
                Op::Put {
                    key: summary_key,
                    value: codec::encode(&summary)?,
                },
            ],
        })?;
        Ok((record, ticket))
    }

    fn newest_not_decision(
        &self,
        pending: &Pending,
        container: Uuid,
    ) -> Result<Option<Phase>, StoreError> {
        let history = pending.scan_prefix(&self.records, &keys::container(PHASE, container))?;
        for bytes in history.values().rev() {
            let record: PhaseRecord = codec::decode(bytes)?;
            if !matches!(record.phase, Phase::Decision { .. }) {
                return Ok(Some(record.phase));
            }
        }
        Ok(None)
    }

    /// Records a status update and returns once it is durable. `seq` and `at_ms` are
    /// set by the store.
    pub async fn record_status(
        &self,
        mut status: StatusRecord,
    ) -> Result<StatusRecord, StoreError> {
        self.writable()?;
        let ticket = {
            let mut pending = self.flusher.pending();
            let summary_key = keys::container(SUMMARY, status.container_id);
            if pending.get(&self.records, &summary_key)?.is_none() {
                return Err(StoreError::UnknownContainer(status.container_id));
            }
            status.seq = self.next_seq();
            status.at_ms = now_ms();
            pending.stage(Entry {
                seq: status.seq,
                ops: vec![Op::Put {
                    key: keys::record(STATUS, status.container_id, status.seq),
                    value: codec::encode(&status)?,
                }],
            })?
        };
        self.durable(ticket).await?;
        Ok(status)
    }

    /// Marks a recorded status update as acknowledged, durably.
    pub async fn acknowledge(&self, container: Uuid, seq: u64) -> Result<(), StoreError> {
        self.writable()?;
        let ticket = {
            let mut pending = self.flusher.pending();
            let key = keys::record(STATUS, container, seq);
            let Some(bytes) = pending.get(&self.records, &key)? else {
                return Err(StoreError::UnknownStatus { container, seq });
            };
            let mut status: StatusRecord = codec::decode(&bytes)?;
            status.acknowledged = true;
            let (tick, tick_op) = self.tick()?;
            pending.stage(Entry {
                seq: tick,
                ops: vec![
                    Op::Put {
                        key,
                        value: codec::encode(&status)?,
                    },
                    tick_op,
                ],
            })?
        };
        self.durable(ticket).await
    }

    /// Gives a write that has no seq of its own one, under `tick`, so that the watermark
    /// covers it: the seq and the change to log with the write. Called under the pending
    /// lock.
    fn tick(&self) -> Result<(u64, Op), StoreError> {
        let tick = self.next_seq();
        let op = Op::Put {
            key: TICK.to_vec(),
            value: codec::encode(&tick)?,
        };
        Ok((tick, op))
    }

    /// The next seq. Called under the pending lock.
    fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.flusher
            .durable(ticket)
            .await
            .map_err(|e| StoreError::NotDurable(e.to_string()))
    }

    /// Drops every record of the containers in `ids` that are `Removed`; returns how many
    /// were dropped. The caller chooses which containers, once, and deletes their other
    /// traces (sandboxes) first: the store purges those and no others, so that a container
    /// becoming due in the meantime cannot lose its records while its sandbox stays. Each
    /// container's records go in one entry of the write-ahead log, so a crash never leaves
    /// part of one.
    pub async fn purge(&self, ids: &[Uuid]) -> Result<usize, StoreError> {
        self.writable()?;
        let ids: BTreeSet<Uuid> = ids.iter().copied().collect();
        let mut purged = 0;
        let tickets = {
            let mut pending = self.flusher.pending();
            let mut entries = Vec::new();
            let mut ops = Vec::new();
            for id in ids {
                // Read under the pending lock: a phase staged meanwhile is seen.
                let Some(bytes) = pending.get(&self.records, &keys::container(SUMMARY, id))? else {
                    continue;
                };
                let summary: Summary = codec::decode(&bytes)?;
                if summary.last.phase != Phase::Removed {
                    continue;
                }
                for prefix in [PHASE, STATUS] {
                    let prefix = keys::container(prefix, id);
                    for key in pending.scan_prefix(&self.records, &prefix)?.into_keys() {
                        ops.push(Op::Remove { key });
                    }
                }
                ops.push(Op::Remove {
                    key: keys::container(SUMMARY, id),
                });
                purged += 1;
                // Well below the log's entry limit, whatever the number of containers. Each
                // entry carries a tick: a crash between two batches then leaves a `tick` that
                // covers every removal that reached the log.
                if ops.len() >= PURGE_OPS_PER_ENTRY {
                    let (tick, tick_op) = self.tick()?;
                    ops.push(tick_op);
                    entries.push(Entry {
                        seq: tick,
                        ops: std::mem::take(&mut ops),
                    });
                }
            }
            if purged == 0 {
                return Ok(0);
            }
            if !ops.is_empty() {
                let (tick, tick_op) = self.tick()?;
                ops.push(tick_op);
                entries.push(Entry { seq: tick, ops });
            }
            entries
                .into_iter()
                .map(|entry| pending.stage(entry))
                .collect::<Result<Vec<Ticket>, CodecError>>()?
        };
        // Each entry applied, so that reads show every purged container gone.
        for ticket in tickets {
            self.durable(ticket).await?;
        }
        Ok(purged)
    }
}
