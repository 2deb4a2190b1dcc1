//! The pending writes: entries staged by writers and not yet in sled. They wait here,
//! in a queue, for the flusher to log them in batches, and their values stay readable
//! (an overlay over sled) until sled holds them; each entry's ticket names it and the
//! stripes its keys need. Kept apart from the flusher so that what a writer reads and
//! stages under the pending lock is one concept, testable without threads.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use crate::codec::CodecError;
use crate::wal::{self, Entry, Op};

/// What a writer waits for: its entry's place in the log, and the stripes of its keys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    pub(super) number: u64,
    pub(super) stripes: Stripes,
}

/// An entry waiting for the flusher: its seq, and its bytes as they go into a batch.
pub(super) struct Staged {
    pub(super) seq: u64,
    pub(super) bytes: Vec<u8>,
}

/// A value staged for a key (`None`: removed), with the ticket of the entry that staged it.
type StagedValue = (u64, Option<Vec<u8>>);

/// Writes staged and not yet applied to sled: the queue the flusher takes, and the staged
/// values of each key, for writers that read before they write and for applying.
#[derive(Default)]
pub(crate) struct Pending {
    pub(super) queue: Vec<Staged>,
    /// Key to the values staged for it and not yet in sled, oldest first.
    pub(super) overlay: BTreeMap<Vec<u8>, VecDeque<StagedValue>>,
    /// Ticket to the keys of its entry and their stripes, until the entry is applied.
    pub(super) unapplied: BTreeMap<u64, (Stripes, Vec<Vec<u8>>)>,
    /// Ticket to the store-wide sequence number of its entry, until sled holds the entry
    /// (or later values of all its keys): what [`Pending::first_unsettled`] reads.
    pub(super) unsettled: BTreeMap<u64, u64>,
    pub(super) issued: u64,
}

impl Pending {
    /// The value of `key` once every staged write is applied.
    pub(crate) fn get(
        &self,
        tree: &sled::Tree,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, sled::Error> {
        match self.overlay.get(key).and_then(VecDeque::back) {
            Some((_, value)) => Ok(value.clone()),
            None => Ok(tree.get(key)?.map(|v| v.to_vec())),
        }
    }

    /// Every key under `prefix` and its value once every staged write is applied.
    pub(crate) fn scan_prefix(
        &self,
        tree: &sled::Tree,
        prefix: &[u8],
    ) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, sled::Error> {
        let mut out = BTreeMap::new();
        for entry in tree.scan_prefix(prefix) {
            let (key, value) = entry?;
            out.insert(key.to_vec(), value.to_vec());
        }
        let staged = self
            .overlay
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter_map(|(key, values)| Some((key, &values.back()?.1)));
        for (key, value) in staged {
            match value {
                Some(v) => out.insert(key.clone(), v.clone()),
                None => out.remove(key),
            };
        }
        Ok(out)
    }

    /// Stages `entry` for the flusher; returns its ticket for [`GroupFlush::durable`].
    /// Fails, staging nothing, if the entry is too large for the log.
    ///
    /// [`GroupFlush::durable`]: super::GroupFlush::durable
    pub(crate) fn stage(&mut self, entry: Entry) -> Result<Ticket, CodecError> {
        let bytes = wal::encode(&entry)?;
        self.issued += 1;
        let mut keys = Vec::with_capacity(entry.ops.len());
        let mut stripes = Stripes::default();
        for op in entry.ops {
            let (key, value) = match op {
                Op::Put { key, value } => (key, Some(value)),
                Op::Remove { key } => (key, None),
            };
            self.overlay
                .entry(key.clone())
                .or_default()
                .push_back((self.issued, value));
            stripes.add(&key);
            keys.push(key);
        }
        self.unapplied.insert(self.issued, (stripes, keys));
        self.unsettled.insert(self.issued, entry.seq);
        self.queue.push(Staged {
            seq: entry.seq,
            bytes,
        });
        Ok(Ticket {
            number: self.issued,
            stripes,
        })
    }

    /// The entries for the next batch (up to [`wal::BATCH_BYTES`], at least one) and the
    /// ticket of the last of them.
    pub(super) fn take(&mut self) -> (Vec<Staged>, u64) {
        let mut size = 0;
        let count = self
            .queue
            .iter()
            .take_while(|s| {
                size += s.bytes.len();
                size <= wal::BATCH_BYTES
            })
            .count()
            .max(1)
            .min(self.queue.len());
        let batch: Vec<Staged> = self.queue.drain(..count).collect();
        let left = u64::try_from(self.queue.len()).unwrap_or(u64::MAX);
        (batch, self.issued - left)
    }

    /// What applying the entry staged with `ticket` (durable, and so every earlier one)
    /// writes to sled: for each of its keys, the newest value staged up to `ticket`.
    /// Nothing for a key a later entry applied already, nor for an entry applied already
    /// (the flusher takes those of writers that stopped waiting).
    pub(super) fn claim(&mut self, ticket: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let Some((_, keys)) = self.unapplied.remove(&ticket) else {
            return Vec::new();
        };
        keys.into_iter()
            .filter_map(|key| {
                let values = self.overlay.get(&key)?;
                let newest = values.iter().take_while(|&&(t, _)| t <= ticket).last()?;
                let value = newest.1.clone();
                Some((key, value))
            })
            .collect()
    }

    /// The sequence number of the oldest entry sled does not hold yet, if any: every
    /// entry before it can be read, and none from it on may be taken as all there is
    /// (entries are applied by their writers, not in order).
    pub(crate) fn first_unsettled(&self) -> Option<u64> {
        self.unsettled.values().next().copied()
    }

    /// Forgets the values staged up to `ticket` for `keys`: sled holds them now.
    pub(super) fn settle<'a>(&mut self, ticket: u64, keys: impl IntoIterator<Item = &'a [u8]>) {
        self.unsettled.remove(&ticket);
        for key in keys {
            let Some(values) = self.overlay.get_mut(key) else {
                continue;
            };
            while values.front().is_some_and(|&(t, _)| t <= ticket) {
                values.pop_front();
            }
            if values.is_empty() {
                self.overlay.remove(key);
            }
        }
    }
}

/// Which of the [`STRIPES`] locks an entry's keys need.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Stripes(u64);

/// Locks that keep the values of a key reaching sled in log order: entries whose keys
/// fall in different stripes write sled in parallel.
/// Each entry takes two or so: with 16, two writers applying at once met on one a quarter
/// of the time, and one of them slept in the kernel.
pub(super) const STRIPES: usize = 64;
// One bit per stripe in a `u64`.
const _: () = assert!(STRIPES == u64::BITS as usize);

impl Stripes {
    /// All of them.
    pub(super) const ALL: Stripes = Stripes(u64::MAX);

    fn add(&mut self, key: &[u8]) {
        self.0 |= 1 << (crc32fast::hash(key) as usize % STRIPES);
    }

    /// Locks them, in ascending order so that two entries never wait for each other.
    pub(super) fn lock(self, locks: &[Mutex<()>; STRIPES]) -> Vec<MutexGuard<'_, ()>> {
        (0..STRIPES)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| locks[i].lock().unwrap_or_else(|p| p.into_inner()))
            .collect()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::flush::shared::write;

    pub(in crate::flush) fn put(key: &str, value: &str) -> Op {
        Op::Put {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        }
    }

    pub(in crate::flush) fn tree() -> sled::Tree {
        sled::Config::new()
            .temporary(true)
            .open()
            .expect("temporary sled")
            .open_tree("records")
            .expect("tree")
    }

    /// What `Shared::apply` does, without its locks.
    fn apply(pending: &mut Pending, tree: &sled::Tree, ticket: Ticket) {
        let writes = pending.claim(ticket.number);
        write(tree, &writes).expect("write");
        pending.settle(ticket.number, writes.iter().map(|(key, _)| key.as_slice()));
    }

    pub(in crate::flush) fn value(tree: &sled::Tree, key: &str) -> Option<String> {
        tree.get(key)
            .expect("get")
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// Writers apply their entries as each becomes durable, not in order: the oldest one
    /// sled lacks bounds what a reader resuming from a sequence number may take as all.
    #[test]
    fn the_oldest_entry_sled_lacks_bounds_what_is_settled() {
        let tree = tree();
        let mut pending = Pending::default();
        assert_eq!(pending.first_unsettled(), None);
        let first = pending
            .stage(Entry {
                seq: 11,
                ops: vec![put("a", "1")],
            })
            .expect("stage");
        let second = pending
            .stage(Entry {
                seq: 12,
                ops: vec![put("b", "2")],
            })
            .expect("stage");
        assert_eq!(pending.first_unsettled(), Some(11));
        apply(&mut pending, &tree, second);
        assert_eq!(pending.first_unsettled(), Some(11), "11 is not in sled yet");
        apply(&mut pending, &tree, first);
        assert_eq!(pending.first_unsettled(), None);
    }

    #[test]
    fn writers_read_through_staged_writes_until_sled_has_them() {
        let tree = tree();
        tree.insert("a1", "old").expect("insert");
        tree.insert("a2", "kept").expect("insert");
        tree.insert("b1", "other prefix").expect("insert");
        let mut pending = Pending::default();
        let remove_a2 = Op::Remove {
            key: b"a2".to_vec(),
        };
        let ops = vec![put("a1", "new"), put("a3", "added"), remove_a2];
        let first = pending.stage(Entry { seq: 1, ops }).expect("stage");
        assert_eq!(
            pending.get(&tree, b"a1").expect("get"),
            Some(b"new".to_vec())
        );
        assert_eq!(pending.get(&tree, b"a2").expect("get"), None);
        assert_eq!(
            pending.get(&tree, b"b1").expect("get"),
            Some(b"other prefix".to_vec())
        );
        let scan = pending.scan_prefix(&tree, b"a").expect("scan");
        let keys: Vec<&[u8]> = scan.keys().map(Vec::as_slice).collect();
        assert_eq!(keys, [&b"a1"[..], b"a3"]);
        assert_eq!(
            value(&tree, "a1").as_deref(),
            Some("old"),
            "not applied yet"
        );
        apply(&mut pending, &tree, first);
        assert_eq!(value(&tree, "a1").as_deref(), Some("new"));
        assert_eq!(value(&tree, "a2"), None);
        assert!(pending.overlay.is_empty() && pending.unapplied.is_empty());
    }

    #[test]
    fn values_reach_sled_in_log_order_whoever_applies_first() {
        let tree = tree();
        let mut pending = Pending::default();
        let one = pending
            .stage(Entry {
                seq: 1,
                ops: vec![put("k", "one"), put("x", "only one")],
            })
            .expect("stage");
        let two = pending
            .stage(Entry {
                seq: 2,
                ops: vec![put("k", "two")],
            })
            .expect("stage");
        let three = pending
            .stage(Entry {
                seq: 3,
                ops: vec![put("k", "three")],
            })
            .expect("stage");
        let (batch, ticket) = pending.take();
        assert_eq!((batch.len(), ticket), (3, three.number));
        // Both durable; the second writer applies first: it takes the newest value up to
        // its own ticket, and the first writer then changes nothing.
        apply(&mut pending, &tree, two);
        assert_eq!(value(&tree, "k").as_deref(), Some("two"));
        apply(&mut pending, &tree, one);
        assert_eq!(value(&tree, "k").as_deref(), Some("two"), "never older");
        assert_eq!(value(&tree, "x").as_deref(), Some("only one"));
        // The third writer stopped waiting: the flusher applies it before a checkpoint.
        assert_eq!(
            pending.get(&tree, b"k").expect("get"),
            Some(b"three".to_vec())
        );
        let leftovers: Vec<u64> = pending.unapplied.keys().copied().collect();
        assert_eq!(leftovers, [three.number]);
        apply(&mut pending, &tree, three);
        assert_eq!(value(&tree, "k").as_deref(), Some("three"));
        assert!(pending.overlay.is_empty() && pending.unapplied.is_empty());
    }
    #[test]
    fn a_batch_is_cut_at_its_size_but_holds_at_least_one_entry() {
        let mut pending = Pending::default();
        let big = vec![0u8; wal::BATCH_BYTES / 2 + 1];
        for seq in 1..=3 {
            pending
                .stage(Entry {
                    seq,
                    ops: vec![Op::Put {
                        key: seq.to_be_bytes().to_vec(),
                        value: big.clone(),
                    }],
                })
                .expect("stage");
        }
        let (batch, ticket) = pending.take();
        assert_eq!((batch.len(), ticket), (1, 1));
        let (batch, ticket) = pending.take();
        assert_eq!((batch.len(), ticket), (1, 2));
        let (batch, ticket) = pending.take();
        assert_eq!((batch.len(), ticket), (1, 3));
        let (batch, ticket) = pending.take();
        assert_eq!((batch.len(), ticket), (0, 3));
    }

    #[test]
    fn an_entry_too_large_for_the_log_is_refused_and_not_staged() {
        let mut pending = Pending::default();
        let huge = Entry {
            seq: 1,
            ops: vec![Op::Put {
                key: b"k".to_vec(),
                value: vec![0; wal::ENTRY_LIMIT as usize + 1],
            }],
        };
        assert!(matches!(
            pending.stage(huge),
            Err(CodecError::TooLarge { .. })
        ));
        assert!(pending.queue.is_empty() && pending.overlay.is_empty());
        assert_eq!(pending.issued, 0);
    }
}
