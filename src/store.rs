//! Persistence: a [`Store`] trait, RocksDB behind it, and an in-memory twin
//! for unit tests.
//!
//! RocksDB layout (schema version [`SCHEMA_VERSION`]):
//!
//! | column family   | key                    | value                                        |
//! |-----------------|------------------------|----------------------------------------------|
//! | `meta`          | `schema_version`       | u32 big-endian                               |
//! | `meta`          | `btc/network`          | network name                                 |
//! | `meta`          | `btc/checkpoint`       | height (u32 BE) ‖ hash (32)                  |
//! | `meta`          | `btc/tip`              | height (u32 BE) ‖ hash (32)                  |
//! | `btc_headers`   | block hash (32)        | header (80) ‖ height (u32 BE) ‖ chainwork (32 BE) |
//! | `btc_best`      | height (u32 BE)        | block hash (32)                              |
//! | `meta`          | `goat/chain_id`        | u64 BE                                       |
//! | `meta`          | `goat/checkpoint`      | number (u64 BE) ‖ hash (32)                  |
//! | `meta`          | `goat/tip`             | number (u64 BE) ‖ hash (32)                  |
//! | `meta`          | `goat/finalized`       | number (u64 BE) ‖ hash (32)                  |
//! | `goat_headers`  | block hash (32)        | rlp(header) (the hash is recomputed on read) |
//! | `goat_best`     | number (u64 BE)        | block hash (32)                              |
//! | `daemon`        | `inv/` ‖ invoice id    | the daemon's invoice record (JSON)           |
//! | `daemon`        | `cursor/<name>`        | a task's cursor (JSON)                       |
//! | `outbox`        | sequence (u64 BE)      | a Metis transaction and its state (JSON)     |
//! | `goat_consensus`| `origin`, `trusted`, `proven`, `evm/` ‖ number, `height/` ‖ height, `set/` ‖ height | GOAT consensus follower ([`crate::goat::follow`]) |
//!
//! Migrations, one per version step, run when a store is opened:
//! 1 → 2 adds the `daemon` and `outbox` column families (created empty);
//! 2 → 3 drops the daemon's v1 invoice records (see [`MIGRATIONS`]);
//! 3 → 4 adds the `goat_consensus` column family (created empty).
//!
//! Every [`ChangeSet`] is written in one atomic write batch, so a crash or a
//! Ctrl-C leaves either the old chain or the new one, never half of each.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bitcoin::block::Header;
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::pow::Work;
use bitcoin::BlockHash;
use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, DB};
use thiserror::Error;

use crate::btc::chain::{ChangeSet, ValidatedHeader};
use crate::btc::network::BtcNetwork;
use crate::goat::chain::{GoatChangeSet, ValidatedGoatHeader};
use alloy::primitives::B256;

/// The schema this build reads and writes. A store with another version is
/// refused rather than misread.
pub const SCHEMA_VERSION: u32 = 4;

const CF_META: &str = "meta";
const CF_BTC_HEADERS: &str = "btc_headers";
const CF_BTC_BEST: &str = "btc_best";
/// Column families reserved for the GOAT chain (schema 1 creates them so the
/// GOAT follower needs no migration).
const CF_GOAT_HEADERS: &str = "goat_headers";
const CF_GOAT_BEST: &str = "goat_best";
/// The daemon's records (invoices, cursors): schema 2.
const CF_DAEMON: &str = "daemon";
/// The Metis transaction outbox: schema 2.
const CF_OUTBOX: &str = "outbox";
/// The GOAT consensus follower's state: schema 4.
const CF_GOAT_CONSENSUS: &str = "goat_consensus";
const ALL_CFS: [&str; 8] = [
    CF_META,
    CF_BTC_HEADERS,
    CF_BTC_BEST,
    CF_GOAT_HEADERS,
    CF_GOAT_BEST,
    CF_DAEMON,
    CF_OUTBOX,
    CF_GOAT_CONSENSUS,
];

/// Numbered migrations: `MIGRATIONS[i]` takes a store from version `i + 1`
/// to `i + 2`. Each runs in one atomic write batch with its version bump.
const MIGRATIONS: [fn(&RocksStore, &mut WriteBatch); 3] = [
    // 1 → 2: the `daemon` and `outbox` column families, created empty by
    // `open`; nothing to rewrite.
    |_, _| {},
    // 2 → 3: PaymentSettlement v2 settles invoice terms, which the daemon's
    // v1 invoice records (`inv/…`, id and amounts only) lack: they are
    // dropped, with the intake cursor (v2 records live under `inv3/`).
    |store, batch| {
        for prefix in [&b"inv/"[..], &b"cursor/intake"[..]] {
            if let Ok(rows) = store.daemon_scan(prefix) {
                for (k, _) in rows {
                    batch.delete_cf(store.cf(CF_DAEMON), k);
                }
            }
        }
    },
    // 3 → 4: the `goat_consensus` column family, created empty by `open`.
    |_, _| {},
];

const KEY_SCHEMA: &[u8] = b"schema_version";
const KEY_BTC_NETWORK: &[u8] = b"btc/network";
const KEY_BTC_CHECKPOINT: &[u8] = b"btc/checkpoint";
const KEY_BTC_TIP: &[u8] = b"btc/tip";
const KEY_GOAT_CHAIN_ID: &[u8] = b"goat/chain_id";
const KEY_GOAT_CHECKPOINT: &[u8] = b"goat/checkpoint";
const KEY_GOAT_TIP: &[u8] = b"goat/tip";
const KEY_GOAT_FINALIZED: &[u8] = b"goat/finalized";

/// A raw key and value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// A store failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// RocksDB itself failed (I/O, lock held by another process, corruption).
    #[error("database {path}: {source}")]
    Db {
        /// The database directory.
        path: PathBuf,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },
    /// The store was written by another schema version.
    #[error("database {path} has schema version {found}; this gmrelay reads versions 1..={supported} (migrating older ones); use a new --data-dir, or the gmrelay that wrote it")]
    SchemaMismatch {
        /// The database directory.
        path: PathBuf,
        /// Version found on disk.
        found: u32,
        /// Version this build supports.
        supported: u32,
    },
    /// The store follows another Bitcoin network.
    #[error("database {path} follows Bitcoin {found}, not {expected} (use another --data-dir)")]
    WrongNetwork {
        /// The database directory.
        path: PathBuf,
        /// Network on disk.
        found: String,
        /// Network asked for.
        expected: BtcNetwork,
    },
    /// The store was started from another checkpoint.
    #[error("database {path} was started from the checkpoint at height {found_height} ({found_hash}), not {expected_height} ({expected_hash})")]
    WrongCheckpoint {
        /// The database directory.
        path: PathBuf,
        /// Checkpoint height on disk.
        found_height: u32,
        /// Checkpoint hash on disk.
        found_hash: BlockHash,
        /// Checkpoint height asked for.
        expected_height: u32,
        /// Checkpoint hash asked for.
        expected_hash: BlockHash,
    },
    /// The store follows another GOAT chain or checkpoint.
    #[error("database {path} follows GOAT chain {found_chain_id} from checkpoint {found_number} ({found_hash}), not chain {expected_chain_id} from {expected_number} ({expected_hash}) (use another --data-dir)")]
    GoatOriginMismatch {
        /// The database directory.
        path: PathBuf,
        /// Chain id on disk.
        found_chain_id: u64,
        /// Checkpoint number on disk.
        found_number: u64,
        /// Checkpoint hash on disk.
        found_hash: B256,
        /// Chain id asked for.
        expected_chain_id: u64,
        /// Checkpoint number asked for.
        expected_number: u64,
        /// Checkpoint hash asked for.
        expected_hash: B256,
    },
    /// A record that does not decode.
    #[error("database {path}: corrupt record in `{cf}` at key {key}: {what}")]
    Corrupt {
        /// The database directory.
        path: PathBuf,
        /// Column family.
        cf: &'static str,
        /// Hex of the key.
        key: String,
        /// What is wrong.
        what: String,
    },
}

/// What a store keeps about the Bitcoin chain.
pub trait Store {
    /// Where the store lives, for error messages.
    fn location(&self) -> String {
        "in-memory store".into()
    }
    /// The network and checkpoint the store was started from, if any.
    fn btc_origin(&self) -> Result<Option<(BtcNetwork, u32, BlockHash)>, StoreError>;
    /// Records the network and checkpoint of a new store.
    fn btc_init(
        &self,
        network: BtcNetwork,
        checkpoint: (u32, BlockHash),
        anchor: &ChangeSet,
    ) -> Result<(), StoreError>;
    /// Persists a change-set atomically.
    fn btc_apply(&self, changes: &ChangeSet) -> Result<(), StoreError>;
    /// The best tip.
    fn btc_tip(&self) -> Result<Option<(u32, BlockHash)>, StoreError>;
    /// A stored header by hash (best chain or side branch).
    fn btc_header(&self, hash: &BlockHash) -> Result<Option<ValidatedHeader>, StoreError>;
    /// The best chain's hash at `height`.
    fn btc_best_hash(&self, height: u32) -> Result<Option<BlockHash>, StoreError>;
    /// Best-chain headers in `from..=to`, lowest first.
    fn btc_best_range(&self, from: u32, to: u32) -> Result<Vec<ValidatedHeader>, StoreError> {
        let mut out = Vec::with_capacity((to.saturating_sub(from) + 1) as usize);
        for h in from..=to {
            let Some(hash) = self.btc_best_hash(h)? else {
                continue;
            };
            if let Some(v) = self.btc_header(&hash)? {
                out.push(v);
            }
        }
        Ok(out)
    }
    /// Whether `hash` is on the best chain; returns its height.
    fn btc_best_height_of(&self, hash: &BlockHash) -> Result<Option<u32>, StoreError> {
        let Some(v) = self.btc_header(hash)? else {
            return Ok(None);
        };
        Ok((self.btc_best_hash(v.height())? == Some(*hash)).then_some(v.height()))
    }

    /// The GOAT chain id and checkpoint (number, hash) the store was started from, if any.
    fn goat_origin(&self) -> Result<Option<(u64, u64, B256)>, StoreError>;
    /// Records the GOAT chain id and checkpoint of a new store, with the anchor's changes.
    fn goat_init(
        &self,
        chain_id: u64,
        checkpoint: (u64, B256),
        anchor: &GoatChangeSet,
    ) -> Result<(), StoreError>;
    /// Persists a GOAT change-set atomically.
    fn goat_apply(&self, changes: &GoatChangeSet) -> Result<(), StoreError>;
    /// The GOAT best tip (number, hash).
    fn goat_tip(&self) -> Result<Option<(u64, B256)>, StoreError>;
    /// The GOAT finalized block (number, hash).
    fn goat_finalized(&self) -> Result<Option<(u64, B256)>, StoreError>;
    /// A stored GOAT header by hash (best chain or reverted).
    fn goat_header(&self, hash: &B256) -> Result<Option<ValidatedGoatHeader>, StoreError>;
    /// The GOAT best chain's hash at `number`.
    fn goat_best_hash(&self, number: u64) -> Result<Option<B256>, StoreError>;
    /// A GOAT consensus record.
    fn consensus_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes GOAT consensus records in one atomic batch.
    fn consensus_put(&self, records: &[KeyValue]) -> Result<(), StoreError>;
    /// Every GOAT consensus record whose key starts with `prefix`, in key order.
    fn consensus_scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError>;
    /// GOAT best-chain headers in `from..=to`, lowest first (missing ones skipped).
    fn goat_best_range(&self, from: u64, to: u64) -> Result<Vec<ValidatedGoatHeader>, StoreError> {
        let mut out = Vec::new();
        for n in from..=to {
            let Some(hash) = self.goat_best_hash(n)? else {
                continue;
            };
            if let Some(v) = self.goat_header(&hash)? {
                out.push(v);
            }
        }
        Ok(out)
    }
}

fn encode_goat_id(number: u64, hash: &B256) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..8].copy_from_slice(&number.to_be_bytes());
    out[8..].copy_from_slice(hash.as_slice());
    out
}

fn decode_goat_id(v: &[u8]) -> Option<(u64, B256)> {
    if v.len() != 40 {
        return None;
    }
    let number = u64::from_be_bytes(v[..8].try_into().ok()?);
    Some((number, B256::from_slice(&v[8..])))
}

fn height_key(h: u32) -> [u8; 4] {
    h.to_be_bytes()
}

fn encode_tip(height: u32, hash: &BlockHash) -> [u8; 36] {
    let mut out = [0u8; 36];
    out[..4].copy_from_slice(&height.to_be_bytes());
    out[4..].copy_from_slice(hash.as_byte_array());
    out
}

fn decode_tip(v: &[u8]) -> Option<(u32, BlockHash)> {
    if v.len() != 36 {
        return None;
    }
    let height = u32::from_be_bytes(v[..4].try_into().ok()?);
    let hash = BlockHash::from_slice(&v[4..]).ok()?;
    Some((height, hash))
}

fn encode_header(v: &ValidatedHeader) -> Vec<u8> {
    let mut out = serialize(v.header());
    out.extend_from_slice(&v.height().to_be_bytes());
    out.extend_from_slice(&v.chainwork().to_be_bytes());
    out
}

fn decode_header(hash: &BlockHash, bytes: &[u8]) -> Result<ValidatedHeader, String> {
    if bytes.len() != 80 + 4 + 32 {
        return Err(format!("record of {} bytes, expected 116", bytes.len()));
    }
    let header: Header = deserialize(&bytes[..80]).map_err(|e| e.to_string())?;
    let height = u32::from_be_bytes(bytes[80..84].try_into().expect("4 bytes"));
    let work: [u8; 32] = bytes[84..116].try_into().expect("32 bytes");
    ValidatedHeader::from_store(header, height, Work::from_be_bytes(work), *hash)
        .map_err(|found| format!("header hashes to {found}"))
}

/// The RocksDB store.
pub struct RocksStore {
    db: DB,
    path: PathBuf,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.path)
            .finish()
    }
}

impl RocksStore {
    /// Opens (or creates) the store in `path`, checking its schema version.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db_err = |source| StoreError::Db {
            path: path.to_path_buf(),
            source,
        };
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_open_files(256);
        opts.set_keep_log_file_num(4);
        let cfs = ALL_CFS.iter().map(|name| {
            let mut cf_opts = Options::default();
            cf_opts.set_write_buffer_size(16 << 20);
            ColumnFamilyDescriptor::new(*name, cf_opts)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(db_err)?;
        let store = RocksStore {
            db,
            path: path.to_path_buf(),
        };
        store.check_schema()?;
        Ok(store)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db_err(&self, source: rocksdb::Error) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            source,
        }
    }

    fn cf(&self, name: &'static str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column families are created on open")
    }

    fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.cf(cf), key).map_err(|e| self.db_err(e))
    }

    fn corrupt(&self, cf: &'static str, key: &[u8], what: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            cf,
            key: hex::encode(key),
            what: what.into(),
        }
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        match self.get(CF_META, KEY_SCHEMA)? {
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_slice())
                    .map(u32::from_be_bytes)
                    .map_err(|_| self.corrupt(CF_META, KEY_SCHEMA, "not a u32"))?;
                if found == 0 || found > SCHEMA_VERSION {
                    return Err(StoreError::SchemaMismatch {
                        path: self.path.clone(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                for version in found..SCHEMA_VERSION {
                    let step = MIGRATIONS[(version - 1) as usize];
                    self.atomically(|batch| {
                        step(self, batch);
                        batch.put_cf(self.cf(CF_META), KEY_SCHEMA, (version + 1).to_be_bytes());
                    })?;
                    tracing::info!(store = %self.path.display(), from = version, to = version + 1, "store migrated");
                }
                Ok(())
            }
            None => {
                // A fresh database, or one written without a version: refuse
                // the latter rather than guess at its layout.
                let any = ALL_CFS.iter().any(|cf| {
                    self.db
                        .iterator_cf(self.cf(cf), rocksdb::IteratorMode::Start)
                        .next()
                        .is_some()
                });
                if any {
                    return Err(StoreError::SchemaMismatch {
                        path: self.path.clone(),
                        found: 0,
                        supported: SCHEMA_VERSION,
                    });
                }
                self.db
                    .put_cf(self.cf(CF_META), KEY_SCHEMA, SCHEMA_VERSION.to_be_bytes())
                    .map_err(|e| self.db_err(e))
            }
        }
    }

    /// Fills one write batch and commits it: all of it lands, or none.
    fn atomically(&self, fill: impl FnOnce(&mut WriteBatch)) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        fill(&mut batch);
        self.db.write(batch).map_err(|e| self.db_err(e))
    }

    fn write_changes(&self, batch: &mut WriteBatch, changes: &ChangeSet) {
        let headers = self.cf(CF_BTC_HEADERS);
        let best = self.cf(CF_BTC_BEST);
        for v in &changes.headers {
            batch.put_cf(headers, v.hash().as_byte_array(), encode_header(v));
        }
        if let Some(h) = changes.truncate_best_above {
            if let Some(from) = h.checked_add(1) {
                // Keys are 4 bytes; a 5-byte end key sorts after all of them.
                batch.delete_range_cf(best, &height_key(from)[..], &[0xffu8; 5][..]);
            }
        }
        for (height, hash) in &changes.best {
            batch.put_cf(best, height_key(*height), hash.as_byte_array());
        }
        if let Some((height, hash)) = changes.tip {
            batch.put_cf(self.cf(CF_META), KEY_BTC_TIP, encode_tip(height, &hash));
        }
    }

    fn write_goat_changes(&self, batch: &mut WriteBatch, changes: &GoatChangeSet) {
        let headers = self.cf(CF_GOAT_HEADERS);
        let best = self.cf(CF_GOAT_BEST);
        for v in &changes.headers {
            batch.put_cf(headers, v.hash().as_slice(), v.rlp());
        }
        if let Some(n) = changes.truncate_best_above {
            if let Some(from) = n.checked_add(1) {
                // Keys are 8 bytes; a 9-byte end key sorts after all of them.
                batch.delete_range_cf(best, &from.to_be_bytes()[..], &[0xffu8; 9][..]);
            }
        }
        for (n, hash) in &changes.best {
            batch.put_cf(best, n.to_be_bytes(), hash.as_slice());
        }
        let meta = self.cf(CF_META);
        if let Some((n, hash)) = changes.tip {
            batch.put_cf(meta, KEY_GOAT_TIP, encode_goat_id(n, &hash));
        }
        if let Some((n, hash)) = changes.finalized {
            batch.put_cf(meta, KEY_GOAT_FINALIZED, encode_goat_id(n, &hash));
        }
    }

    fn goat_meta_id(&self, key: &'static [u8]) -> Result<Option<(u64, B256)>, StoreError> {
        match self.get(CF_META, key)? {
            None => Ok(None),
            Some(v) => decode_goat_id(&v)
                .map(Some)
                .ok_or_else(|| self.corrupt(CF_META, key, "bad length")),
        }
    }

    /// A daemon record (`daemon` column family).
    pub fn daemon_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(CF_DAEMON, key)
    }

    /// Every daemon record whose key starts with `prefix`, in key order.
    pub fn daemon_scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        self.scan(CF_DAEMON, prefix)
    }

    fn scan(&self, cf: &'static str, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        let iter = self.db.iterator_cf(
            self.cf(cf),
            rocksdb::IteratorMode::From(prefix, rocksdb::Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(|e| self.db_err(e))?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Writes daemon records and outbox entries in one atomic batch.
    pub fn daemon_write(
        &self,
        records: &[KeyValue],
        outbox: &[(u64, Vec<u8>)],
    ) -> Result<(), StoreError> {
        self.atomically(|batch| {
            for (k, v) in records {
                batch.put_cf(self.cf(CF_DAEMON), k, v);
            }
            for (seq, v) in outbox {
                batch.put_cf(self.cf(CF_OUTBOX), seq.to_be_bytes(), v);
            }
        })
    }

    /// Deletes outbox entries, in one atomic batch.
    pub fn outbox_delete(&self, seqs: &[u64]) -> Result<(), StoreError> {
        self.atomically(|batch| {
            for seq in seqs {
                batch.delete_cf(self.cf(CF_OUTBOX), seq.to_be_bytes());
            }
        })
    }

    /// Every outbox entry, by sequence number.
    pub fn outbox_all(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_OUTBOX), rocksdb::IteratorMode::Start)
        {
            let (k, v) = item.map_err(|e| self.db_err(e))?;
            let seq = <[u8; 8]>::try_from(&k[..])
                .map(u64::from_be_bytes)
                .map_err(|_| self.corrupt(CF_OUTBOX, &k, "key is not a u64"))?;
            out.push((seq, v.to_vec()));
        }
        Ok(out)
    }

    /// The schema version on disk.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let v = self
            .get(CF_META, KEY_SCHEMA)?
            .ok_or_else(|| self.corrupt(CF_META, KEY_SCHEMA, "missing"))?;
        <[u8; 4]>::try_from(v.as_slice())
            .map(u32::from_be_bytes)
            .map_err(|_| self.corrupt(CF_META, KEY_SCHEMA, "not a u32"))
    }

    /// Writes a schema version, for tests of the refusal path.
    #[doc(hidden)]
    pub fn force_schema_version(&self, version: u32) -> Result<(), StoreError> {
        self.db
            .put_cf(self.cf(CF_META), KEY_SCHEMA, version.to_be_bytes())
            .map_err(|e| self.db_err(e))
    }
}

impl Store for RocksStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn btc_origin(&self) -> Result<Option<(BtcNetwork, u32, BlockHash)>, StoreError> {
        let Some(net) = self.get(CF_META, KEY_BTC_NETWORK)? else {
            return Ok(None);
        };
        let net = String::from_utf8_lossy(&net).to_string();
        let network: BtcNetwork = net
            .parse()
            .map_err(|e: String| self.corrupt(CF_META, KEY_BTC_NETWORK, e))?;
        let cp = self
            .get(CF_META, KEY_BTC_CHECKPOINT)?
            .ok_or_else(|| self.corrupt(CF_META, KEY_BTC_CHECKPOINT, "missing"))?;
        let (h, hash) = decode_tip(&cp)
            .ok_or_else(|| self.corrupt(CF_META, KEY_BTC_CHECKPOINT, "bad length"))?;
        Ok(Some((network, h, hash)))
    }

    fn btc_init(
        &self,
        network: BtcNetwork,
        checkpoint: (u32, BlockHash),
        anchor: &ChangeSet,
    ) -> Result<(), StoreError> {
        self.atomically(|batch| {
            let meta = self.cf(CF_META);
            batch.put_cf(meta, KEY_BTC_NETWORK, network.name());
            batch.put_cf(
                meta,
                KEY_BTC_CHECKPOINT,
                encode_tip(checkpoint.0, &checkpoint.1),
            );
            self.write_changes(batch, anchor);
        })
    }

    fn btc_apply(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.atomically(|batch| self.write_changes(batch, changes))
    }

    fn btc_tip(&self) -> Result<Option<(u32, BlockHash)>, StoreError> {
        match self.get(CF_META, KEY_BTC_TIP)? {
            None => Ok(None),
            Some(v) => decode_tip(&v)
                .map(Some)
                .ok_or_else(|| self.corrupt(CF_META, KEY_BTC_TIP, "bad length")),
        }
    }

    fn btc_header(&self, hash: &BlockHash) -> Result<Option<ValidatedHeader>, StoreError> {
        let key = hash.as_byte_array();
        match self.get(CF_BTC_HEADERS, key)? {
            None => Ok(None),
            Some(v) => decode_header(hash, &v)
                .map(Some)
                .map_err(|what| self.corrupt(CF_BTC_HEADERS, key, what)),
        }
    }

    fn btc_best_hash(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        let key = height_key(height);
        match self.get(CF_BTC_BEST, &key)? {
            None => Ok(None),
            Some(v) => BlockHash::from_slice(&v)
                .map(Some)
                .map_err(|_| self.corrupt(CF_BTC_BEST, &key, "not a 32-byte hash")),
        }
    }

    fn btc_best_range(&self, from: u32, to: u32) -> Result<Vec<ValidatedHeader>, StoreError> {
        let mut out = Vec::with_capacity((to.saturating_sub(from) + 1) as usize);
        let iter = self.db.iterator_cf(
            self.cf(CF_BTC_BEST),
            rocksdb::IteratorMode::From(&height_key(from), rocksdb::Direction::Forward),
        );
        let mut hashes = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(|e| self.db_err(e))?;
            let h = <[u8; 4]>::try_from(&k[..])
                .map(u32::from_be_bytes)
                .map_err(|_| self.corrupt(CF_BTC_BEST, &k, "key is not a u32"))?;
            if h > to {
                break;
            }
            let hash = BlockHash::from_slice(&v)
                .map_err(|_| self.corrupt(CF_BTC_BEST, &k, "not a 32-byte hash"))?;
            hashes.push(hash);
        }
        let cf = self.cf(CF_BTC_HEADERS);
        let keys: Vec<_> = hashes
            .iter()
            .map(|h| (cf, h.as_byte_array().to_vec()))
            .collect();
        for (hash, res) in hashes.iter().zip(self.db.multi_get_cf(keys)) {
            let key = hash.as_byte_array();
            let v = res
                .map_err(|e| self.db_err(e))?
                .ok_or_else(|| self.corrupt(CF_BTC_HEADERS, key, "best-chain header missing"))?;
            out.push(decode_header(hash, &v).map_err(|w| self.corrupt(CF_BTC_HEADERS, key, w))?);
        }
        Ok(out)
    }

    fn goat_origin(&self) -> Result<Option<(u64, u64, B256)>, StoreError> {
        let Some(id) = self.get(CF_META, KEY_GOAT_CHAIN_ID)? else {
            return Ok(None);
        };
        let chain_id = <[u8; 8]>::try_from(id.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| self.corrupt(CF_META, KEY_GOAT_CHAIN_ID, "not a u64"))?;
        let (n, hash) = self
            .goat_meta_id(KEY_GOAT_CHECKPOINT)?
            .ok_or_else(|| self.corrupt(CF_META, KEY_GOAT_CHECKPOINT, "missing"))?;
        Ok(Some((chain_id, n, hash)))
    }

    fn goat_init(
        &self,
        chain_id: u64,
        checkpoint: (u64, B256),
        anchor: &GoatChangeSet,
    ) -> Result<(), StoreError> {
        self.atomically(|batch| {
            let meta = self.cf(CF_META);
            batch.put_cf(meta, KEY_GOAT_CHAIN_ID, chain_id.to_be_bytes());
            batch.put_cf(
                meta,
                KEY_GOAT_CHECKPOINT,
                encode_goat_id(checkpoint.0, &checkpoint.1),
            );
            self.write_goat_changes(batch, anchor);
        })
    }

    fn goat_apply(&self, changes: &GoatChangeSet) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.atomically(|batch| self.write_goat_changes(batch, changes))
    }

    fn goat_tip(&self) -> Result<Option<(u64, B256)>, StoreError> {
        self.goat_meta_id(KEY_GOAT_TIP)
    }

    fn goat_finalized(&self) -> Result<Option<(u64, B256)>, StoreError> {
        self.goat_meta_id(KEY_GOAT_FINALIZED)
    }

    fn goat_header(&self, hash: &B256) -> Result<Option<ValidatedGoatHeader>, StoreError> {
        let key = hash.as_slice();
        match self.get(CF_GOAT_HEADERS, key)? {
            None => Ok(None),
            Some(v) => ValidatedGoatHeader::from_store(&v, *hash)
                .map(Some)
                .map_err(|what| self.corrupt(CF_GOAT_HEADERS, key, what)),
        }
    }

    fn goat_best_hash(&self, number: u64) -> Result<Option<B256>, StoreError> {
        self.goat_best_hash_inner(number)
    }

    fn consensus_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(CF_GOAT_CONSENSUS, key)
    }

    fn consensus_put(&self, records: &[KeyValue]) -> Result<(), StoreError> {
        self.atomically(|batch| {
            for (k, v) in records {
                batch.put_cf(self.cf(CF_GOAT_CONSENSUS), k, v);
            }
        })
    }

    fn consensus_scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        self.scan(CF_GOAT_CONSENSUS, prefix)
    }

    fn goat_best_range(&self, from: u64, to: u64) -> Result<Vec<ValidatedGoatHeader>, StoreError> {
        let iter = self.db.iterator_cf(
            self.cf(CF_GOAT_BEST),
            rocksdb::IteratorMode::From(&from.to_be_bytes(), rocksdb::Direction::Forward),
        );
        let mut hashes = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(|e| self.db_err(e))?;
            let n = <[u8; 8]>::try_from(&k[..])
                .map(u64::from_be_bytes)
                .map_err(|_| self.corrupt(CF_GOAT_BEST, &k, "key is not a u64"))?;
            if n > to {
                break;
            }
            if v.len() != 32 {
                return Err(self.corrupt(CF_GOAT_BEST, &k, "not a 32-byte hash"));
            }
            hashes.push(B256::from_slice(&v));
        }
        let cf = self.cf(CF_GOAT_HEADERS);
        let keys: Vec<_> = hashes.iter().map(|h| (cf, h.as_slice().to_vec())).collect();
        let mut out = Vec::with_capacity(hashes.len());
        for (hash, res) in hashes.iter().zip(self.db.multi_get_cf(keys)) {
            let key = hash.as_slice();
            let v = res
                .map_err(|e| self.db_err(e))?
                .ok_or_else(|| self.corrupt(CF_GOAT_HEADERS, key, "best-chain header missing"))?;
            out.push(
                ValidatedGoatHeader::from_store(&v, *hash)
                    .map_err(|w| self.corrupt(CF_GOAT_HEADERS, key, w))?,
            );
        }
        Ok(out)
    }
}

impl RocksStore {
    fn goat_best_hash_inner(&self, number: u64) -> Result<Option<B256>, StoreError> {
        let key = number.to_be_bytes();
        match self.get(CF_GOAT_BEST, &key)? {
            None => Ok(None),
            Some(v) if v.len() == 32 => Ok(Some(B256::from_slice(&v))),
            Some(_) => Err(self.corrupt(CF_GOAT_BEST, &key, "not a 32-byte hash")),
        }
    }
}

/// An in-memory store with the same semantics, for unit tests and benchmarks
/// of the validation core alone.
#[derive(Debug, Default)]
pub struct MemStore {
    inner: Mutex<MemInner>,
}

#[derive(Debug, Default)]
struct MemInner {
    origin: Option<(BtcNetwork, u32, BlockHash)>,
    headers: HashMap<BlockHash, ValidatedHeader>,
    best: BTreeMap<u32, BlockHash>,
    tip: Option<(u32, BlockHash)>,
    goat_origin: Option<(u64, u64, B256)>,
    goat_headers: HashMap<B256, ValidatedGoatHeader>,
    goat_best: BTreeMap<u64, B256>,
    goat_tip: Option<(u64, B256)>,
    goat_finalized: Option<(u64, B256)>,
    consensus: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemInner {
    fn apply(&mut self, changes: &ChangeSet) {
        for v in &changes.headers {
            self.headers.insert(v.hash(), *v);
        }
        if let Some(h) = changes.truncate_best_above {
            self.best.retain(|k, _| *k <= h);
        }
        for (h, hash) in &changes.best {
            self.best.insert(*h, *hash);
        }
        if changes.tip.is_some() {
            self.tip = changes.tip;
        }
    }
}

impl MemInner {
    fn goat_apply(&mut self, changes: &GoatChangeSet) {
        for v in &changes.headers {
            self.goat_headers.insert(v.hash(), v.clone());
        }
        if let Some(n) = changes.truncate_best_above {
            self.goat_best.retain(|k, _| *k <= n);
        }
        for (n, hash) in &changes.best {
            self.goat_best.insert(*n, *hash);
        }
        if changes.tip.is_some() {
            self.goat_tip = changes.tip;
        }
        if changes.finalized.is_some() {
            self.goat_finalized = changes.finalized;
        }
    }
}

impl MemStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemStore {
    fn btc_origin(&self) -> Result<Option<(BtcNetwork, u32, BlockHash)>, StoreError> {
        Ok(self.lock().origin)
    }
    fn btc_init(
        &self,
        network: BtcNetwork,
        checkpoint: (u32, BlockHash),
        anchor: &ChangeSet,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.origin = Some((network, checkpoint.0, checkpoint.1));
        inner.apply(anchor);
        Ok(())
    }
    fn btc_apply(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        self.lock().apply(changes);
        Ok(())
    }
    fn btc_tip(&self) -> Result<Option<(u32, BlockHash)>, StoreError> {
        Ok(self.lock().tip)
    }
    fn btc_header(&self, hash: &BlockHash) -> Result<Option<ValidatedHeader>, StoreError> {
        Ok(self.lock().headers.get(hash).copied())
    }
    fn btc_best_hash(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        Ok(self.lock().best.get(&height).copied())
    }
    fn goat_origin(&self) -> Result<Option<(u64, u64, B256)>, StoreError> {
        Ok(self.lock().goat_origin)
    }
    fn goat_init(
        &self,
        chain_id: u64,
        checkpoint: (u64, B256),
        anchor: &GoatChangeSet,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.goat_origin = Some((chain_id, checkpoint.0, checkpoint.1));
        inner.goat_apply(anchor);
        Ok(())
    }
    fn goat_apply(&self, changes: &GoatChangeSet) -> Result<(), StoreError> {
        self.lock().goat_apply(changes);
        Ok(())
    }
    fn goat_tip(&self) -> Result<Option<(u64, B256)>, StoreError> {
        Ok(self.lock().goat_tip)
    }
    fn goat_finalized(&self) -> Result<Option<(u64, B256)>, StoreError> {
        Ok(self.lock().goat_finalized)
    }
    fn goat_header(&self, hash: &B256) -> Result<Option<ValidatedGoatHeader>, StoreError> {
        Ok(self.lock().goat_headers.get(hash).cloned())
    }
    fn goat_best_hash(&self, number: u64) -> Result<Option<B256>, StoreError> {
        Ok(self.lock().goat_best.get(&number).copied())
    }
    fn consensus_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().consensus.get(key).cloned())
    }
    fn consensus_put(&self, records: &[KeyValue]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for (k, v) in records {
            inner.consensus.insert(k.clone(), v.clone());
        }
        Ok(())
    }
    fn consensus_scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        Ok(self
            .lock()
            .consensus
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}
