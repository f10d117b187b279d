//! The persistent outbox: every Metis transaction gmrelay signs is written
//! to the store before it is broadcast, and moves
//! `planned → sent (nonce, gas price, hash, raw bytes) → mined | failed`.
//!
//! A `kill -9` at any instant leaves either nothing (killed before the
//! record: nothing was broadcast) or a `sent` entry whose raw bytes can be
//! rebroadcast and whose hashes can be looked up; [`super::sender::Sender::reconcile`]
//! settles every unfinished entry against the chain before new work is planned,
//! so a restart never double-submits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use alloy::primitives::{Bytes, B256};
use serde::{Deserialize, Serialize};

use crate::store::{RocksStore, StoreError};

/// Where a transaction is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxState {
    /// About to be signed (never broadcast).
    Planned,
    /// Signed and broadcast (or about to be: the record comes first).
    Sent,
    /// Mined with status 1.
    Mined,
    /// Mined with status 0, replaced, dropped, or never sent.
    Failed,
}

impl TxState {
    /// Every state, for metrics.
    pub const ALL: [TxState; 4] = [
        TxState::Planned,
        TxState::Sent,
        TxState::Mined,
        TxState::Failed,
    ];

    /// `planned`, `sent`, `mined`, `failed`.
    pub fn name(self) -> &'static str {
        match self {
            TxState::Planned => "planned",
            TxState::Sent => "sent",
            TxState::Mined => "mined",
            TxState::Failed => "failed",
        }
    }

    /// Whether the entry still needs the chain's answer.
    pub fn is_open(self) -> bool {
        matches!(self, TxState::Planned | TxState::Sent)
    }
}

/// One transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Sequence number (the store key).
    pub seq: u64,
    /// What it does (`PaymentSettlement.settleBtc`, …).
    pub what: String,
    /// What it is for (`invoice 0x…`, `headers 101..=200`), for `/status`.
    pub purpose: String,
    /// Its state.
    pub state: TxState,
    /// The nonce it uses.
    pub nonce: Option<u64>,
    /// The gas price of the latest signed version, wei (decimal string).
    pub gas_price: Option<String>,
    /// Every hash broadcast for this nonce, oldest first (a replacement
    /// at a higher price adds one).
    pub hashes: Vec<B256>,
    /// The raw bytes of the latest signed version.
    pub raw: Option<Bytes>,
    /// The hash that was mined.
    pub mined_hash: Option<B256>,
    /// Gas used, once mined.
    pub gas_used: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Unix seconds of creation.
    pub created: u64,
    /// Unix seconds of the last change.
    pub updated: u64,
}

impl OutboxEntry {
    /// A `planned` entry with sequence number `seq`.
    pub fn planned(seq: u64, what: &str, purpose: &str) -> Self {
        let t = now();
        OutboxEntry {
            seq,
            what: what.to_string(),
            purpose: purpose.to_string(),
            state: TxState::Planned,
            nonce: None,
            gas_price: None,
            hashes: Vec::new(),
            raw: None,
            mined_hash: None,
            gas_used: None,
            error: None,
            created: t,
            updated: t,
        }
    }
}

/// The outbox over the store's `outbox` column family.
#[derive(Debug)]
pub struct Outbox {
    store: Arc<RocksStore>,
    next: AtomicU64,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Outbox {
    /// Opens the outbox of `store`.
    pub fn open(store: Arc<RocksStore>) -> Result<Self, StoreError> {
        let next = store
            .outbox_all()?
            .last()
            .map(|(seq, _)| seq + 1)
            .unwrap_or(1);
        Ok(Outbox {
            store,
            next: AtomicU64::new(next),
        })
    }

    /// A new `planned` entry (written).
    pub fn plan(&self, what: &str, purpose: &str) -> Result<OutboxEntry, StoreError> {
        let e = OutboxEntry::planned(self.next.fetch_add(1, Ordering::SeqCst), what, purpose);
        self.save(&e)?;
        Ok(e)
    }

    /// Writes `entry` (its `updated` time set now).
    pub fn save(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        let mut e = entry.clone();
        e.updated = now();
        let bytes = serde_json::to_vec(&e).expect("an outbox entry serializes");
        self.store.daemon_write(&[], &[(e.seq, bytes)])
    }

    /// Every entry, oldest first. Entries that do not decode are reported
    /// as store corruption.
    pub fn all(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.store
            .outbox_all()?
            .into_iter()
            .map(|(seq, v)| {
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    path: self.store.path().to_path_buf(),
                    cf: "outbox",
                    key: seq.to_string(),
                    what: e.to_string(),
                })
            })
            .collect()
    }

    /// Entries still waiting for the chain's answer.
    pub fn open_entries(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|e| e.state.is_open())
            .collect())
    }

    /// Deletes the entries that are finished (mined or failed) and
    /// unchanged for `keep_secs` before `now` (unix seconds), so the outbox
    /// does not grow for the life of the relayer. The newest entry stays
    /// (it carries the sequence the next one continues from); open entries
    /// always stay. Returns how many were deleted.
    pub fn prune(&self, keep_secs: u64, now: u64) -> Result<usize, StoreError> {
        let all = self.all()?;
        let newest = all.last().map(|e| e.seq);
        let old: Vec<u64> = all
            .iter()
            .filter(|e| {
                !e.state.is_open()
                    && Some(e.seq) != newest
                    && e.updated.saturating_add(keep_secs) < now
            })
            .map(|e| e.seq)
            .collect();
        if !old.is_empty() {
            self.store.outbox_delete(&old)?;
        }
        Ok(old.len())
    }

    /// Entries by state.
    pub fn counts(&self) -> Result<Vec<(TxState, usize)>, StoreError> {
        let all = self.all()?;
        Ok(TxState::ALL
            .iter()
            .map(|s| (*s, all.iter().filter(|e| e.state == *s).count()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_reopen_and_keep_their_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RocksStore::open(dir.path()).unwrap());
        let outbox = Outbox::open(store.clone()).unwrap();
        let mut a = outbox
            .plan("PaymentSettlement.settleBtc", "invoice 0x01")
            .unwrap();
        let b = outbox
            .plan("BtcLightClient.submitHeaders", "headers 1..=9")
            .unwrap();
        a.state = TxState::Sent;
        a.nonce = Some(7);
        a.hashes.push(B256::repeat_byte(1));
        a.raw = Some(Bytes::from_static(&[0xf8, 0x01]));
        outbox.save(&a).unwrap();
        drop(outbox);
        drop(store);
        let store = Arc::new(RocksStore::open(dir.path()).unwrap());
        let outbox = Outbox::open(store).unwrap();
        let all = outbox.all().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].state, TxState::Sent);
        assert_eq!(all[0].nonce, Some(7));
        assert_eq!(
            all[0].raw.as_ref().map(|b| b.to_vec()),
            Some(vec![0xf8, 0x01])
        );
        assert_eq!(all[1].seq, b.seq);
        assert_eq!(outbox.plan("x", "y").unwrap().seq, b.seq + 1);
        assert_eq!(outbox.open_entries().unwrap().len(), 3);
    }

    #[test]
    fn prune_deletes_old_finished_entries_and_keeps_open_and_newest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RocksStore::open(dir.path()).unwrap());
        let outbox = Outbox::open(store.clone()).unwrap();
        let mut states = Vec::new();
        for state in [
            TxState::Mined,
            TxState::Failed,
            TxState::Sent,
            TxState::Mined,
        ] {
            let mut e = outbox
                .plan("PaymentSettlement.settleBtc", "invoice 0x01")
                .unwrap();
            e.state = state;
            outbox.save(&e).unwrap();
            states.push(e.seq);
        }
        let t = now();
        // Nothing is old enough yet.
        assert_eq!(outbox.prune(3600, t).unwrap(), 0);
        // An hour and a second later: the mined and failed ones go; the sent
        // one (open) and the newest (mined) stay.
        assert_eq!(outbox.prune(3600, t + 3602).unwrap(), 2);
        let left: Vec<u64> = outbox.all().unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(left, vec![states[2], states[3]]);
        // Sequence numbers keep growing after a reopen.
        drop(outbox);
        let outbox = Outbox::open(store).unwrap();
        assert_eq!(outbox.plan("x", "y").unwrap().seq, states[3] + 1);
    }
}
