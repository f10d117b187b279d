//! The daemon's records in the store's `daemon` column family: one per
//! invoice (what it asks, where its payment is, which stage it is at) and
//! one cursor per task. JSON values, written atomically.

use std::sync::Arc;

use alloy::primitives::B256;
use serde::{Deserialize, Serialize};

use crate::metis::invoice::{SignedInvoice, Terms};
use crate::rail::Rail;
use crate::store::{RocksStore, StoreError};

/// Where an invoice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Open (created on Metis, or signed and handed in); no payment seen yet.
    AwaitingPayment,
    /// Paid; waiting for the confirmations (Bitcoin) or finality (GOAT).
    Confirming,
    /// Deep enough: headers or the attestation are being relayed, then
    /// the settlement sent.
    Settling,
    /// Settled on Metis by this relayer.
    Settled,
    /// Settled on Metis by someone else (another relayer).
    SettledByOther,
    /// Expired before it was paid deep enough.
    Expired,
    /// A payment that can never settle it (wrong amount, payee…).
    Failed,
}

impl Stage {
    /// Every stage, for metrics.
    pub const ALL: [Stage; 7] = [
        Stage::AwaitingPayment,
        Stage::Confirming,
        Stage::Settling,
        Stage::Settled,
        Stage::SettledByOther,
        Stage::Expired,
        Stage::Failed,
    ];

    /// The snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            Stage::AwaitingPayment => "awaiting_payment",
            Stage::Confirming => "confirming",
            Stage::Settling => "settling",
            Stage::Settled => "settled",
            Stage::SettledByOther => "settled_by_other",
            Stage::Expired => "expired",
            Stage::Failed => "failed",
        }
    }

    /// Whether the daemon still works on it.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Stage::AwaitingPayment | Stage::Confirming | Stage::Settling
        )
    }
}

/// A payment found for an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRef {
    /// Bitcoin txid (display order) or GOAT transaction hash.
    pub tx: String,
    /// The block it is in (display order for Bitcoin).
    pub block_hash: String,
    /// Its height.
    pub height: u64,
}

/// How an invoice reached the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `InvoiceCreated` on PaymentSettlement.
    Chain,
    /// Signed terms handed in over the HTTP API (or by the x402 facilitator).
    Signed,
}

/// One invoice, as the daemon tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRecord {
    /// The invoice id (`invoice_id(merchant, ref)`).
    pub id: B256,
    /// Its terms and the merchant's signature (empty when created on-chain).
    pub invoice: SignedInvoice,
    /// How it came in.
    pub origin: Origin,
    /// Where it is.
    pub stage: Stage,
    /// Its payment, once found.
    pub payment: Option<PaymentRef>,
    /// The Metis settlement transaction.
    pub settled_tx: Option<B256>,
    /// The last thing that went wrong or is awaited, for `/status`.
    pub detail: Option<String>,
    /// The Metis block that created it (0 for signed invoices).
    pub created_block: u64,
    /// Unix milliseconds when the payment reached its required depth.
    pub deep_at_ms: Option<u64>,
    /// Unix milliseconds when its settlement was mined.
    pub settled_at_ms: Option<u64>,
    /// GOAT: the first block the next payment search reads (each search
    /// reads a bounded range and moves this forward).
    #[serde(default)]
    pub goat_scan_from: Option<u64>,
}

impl InvoiceRecord {
    /// A new record, awaiting its payment.
    pub fn new(invoice: SignedInvoice, origin: Origin, created_block: u64) -> InvoiceRecord {
        InvoiceRecord {
            id: invoice.id(),
            invoice,
            origin,
            stage: Stage::AwaitingPayment,
            payment: None,
            settled_tx: None,
            detail: None,
            created_block,
            deep_at_ms: None,
            settled_at_ms: None,
            goat_scan_from: None,
        }
    }

    /// The terms.
    pub fn terms(&self) -> &Terms {
        &self.invoice.terms
    }

    /// The rail.
    pub fn rail(&self) -> Rail {
        self.invoice.terms.rail
    }
}

/// One payment the x402 facilitator took in, keyed so that it settles one
/// invoice once: GOAT `eip155:<chain>/<token>/<from>/<nonce>` (one EIP-3009
/// authorization), Bitcoin `bip122:<genesis>/<invoice id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct X402Record {
    /// The key.
    pub key: String,
    /// The paying chain (CAIP-2).
    pub network: String,
    /// The invoice it settles.
    pub invoice_id: B256,
    /// Who pays (GOAT: the authorization's `from`).
    pub payer: Option<String>,
    /// The amount, base units.
    pub amount: String,
    /// The payment transaction, once sent (GOAT hash, Bitcoin txid).
    pub transaction: Option<String>,
    /// Whether `/settle` has answered `success` for it: a payment unlocks once.
    pub reported: bool,
    /// What it was taken in for (`payTo`, asset, amount, lowercase): a
    /// repeat must ask the same, or it is refused.
    #[serde(default)]
    pub binding: String,
    /// Unix milliseconds when it was taken in.
    pub created_ms: u64,
}

/// Schema 3 records (terms and signature); schema 2's `inv/` ones are
/// dropped by the store's migration.
fn inv_key(id: &B256) -> Vec<u8> {
    let mut k = b"inv3/".to_vec();
    k.extend_from_slice(id.as_slice());
    k
}

/// Typed access to the `daemon` column family.
#[derive(Debug, Clone)]
pub struct Records {
    store: Arc<RocksStore>,
}

fn corrupt(store: &RocksStore, key: &[u8], e: serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        path: store.path().to_path_buf(),
        cf: "daemon",
        key: hex::encode(key),
        what: e.to_string(),
    }
}

impl Records {
    /// Over `store`.
    pub fn new(store: Arc<RocksStore>) -> Self {
        Records { store }
    }

    /// The store.
    pub fn store(&self) -> &Arc<RocksStore> {
        &self.store
    }

    /// One invoice.
    pub fn invoice(&self, id: &B256) -> Result<Option<InvoiceRecord>, StoreError> {
        let key = inv_key(id);
        self.store
            .daemon_get(&key)?
            .map(|v| serde_json::from_slice(&v).map_err(|e| corrupt(&self.store, &key, e)))
            .transpose()
    }

    /// Every invoice.
    pub fn invoices(&self) -> Result<Vec<InvoiceRecord>, StoreError> {
        self.store
            .daemon_scan(b"inv3/")?
            .into_iter()
            .map(|(k, v)| serde_json::from_slice(&v).map_err(|e| corrupt(&self.store, &k, e)))
            .collect()
    }

    /// Writes invoices and a cursor in one atomic batch.
    pub fn save(
        &self,
        invoices: &[InvoiceRecord],
        cursor: Option<(&str, &serde_json::Value)>,
    ) -> Result<(), StoreError> {
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = invoices
            .iter()
            .map(|r| {
                (
                    inv_key(&r.id),
                    serde_json::to_vec(r).expect("a record serializes"),
                )
            })
            .collect();
        if let Some((name, v)) = cursor {
            rows.push((
                format!("cursor/{name}").into_bytes(),
                serde_json::to_vec(v).expect("a cursor serializes"),
            ));
        }
        self.store.daemon_write(&rows, &[])
    }

    /// An x402 settlement, by its key (see [`X402Record`]).
    pub fn x402(&self, key: &str) -> Result<Option<X402Record>, StoreError> {
        let k = format!("x402/{key}").into_bytes();
        self.store
            .daemon_get(&k)?
            .map(|v| serde_json::from_slice(&v).map_err(|e| corrupt(&self.store, &k, e)))
            .transpose()
    }

    /// The x402 payment key that was answered `success` for invoice `id`, if any.
    pub fn x402_reported(&self, id: &B256) -> Result<Option<String>, StoreError> {
        let k = format!("x402-invoice/{id}").into_bytes();
        self.store
            .daemon_get(&k)?
            .map(|v| {
                String::from_utf8(v).map_err(|e| StoreError::Corrupt {
                    path: self.store.path().to_path_buf(),
                    cf: "daemon",
                    key: hex::encode(&k),
                    what: e.to_string(),
                })
            })
            .transpose()
    }

    /// Marks `r` reported, and its invoice reported by `r.key`, in one batch.
    pub fn report_x402(&self, r: &X402Record) -> Result<(), StoreError> {
        self.store.daemon_write(
            &[
                (
                    format!("x402/{}", r.key).into_bytes(),
                    serde_json::to_vec(r).expect("a record serializes"),
                ),
                (
                    format!("x402-invoice/{}", r.invoice_id).into_bytes(),
                    r.key.clone().into_bytes(),
                ),
            ],
            &[],
        )
    }

    /// Writes an x402 settlement.
    pub fn save_x402(&self, r: &X402Record) -> Result<(), StoreError> {
        self.store.daemon_write(
            &[(
                format!("x402/{}", r.key).into_bytes(),
                serde_json::to_vec(r).expect("a record serializes"),
            )],
            &[],
        )
    }

    /// A task's cursor.
    pub fn cursor(&self, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let key = format!("cursor/{name}").into_bytes();
        self.store
            .daemon_get(&key)?
            .map(|v| serde_json::from_slice(&v).map_err(|e| corrupt(&self.store, &key, e)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoices_and_cursors_round_trip_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let r = Records::new(Arc::new(RocksStore::open(dir.path()).unwrap()));
        let terms = Terms {
            merchant: alloy::primitives::Address::repeat_byte(3),
            reference: B256::repeat_byte(1),
            rail: Rail::Btc,
            payee: alloy::primitives::Bytes::from_static(&[0x00, 0x14]),
            asset: alloy::primitives::Address::ZERO,
            amount: alloy::primitives::U256::from(50_000u64),
            expiry: 2_000_000_000,
            service: alloy::primitives::Address::ZERO,
            service_id: B256::ZERO,
        };
        let inv = InvoiceRecord::new(SignedInvoice::on_chain(terms), Origin::Chain, 7);
        assert_eq!(
            inv.id,
            crate::metis::invoice_id(inv.terms().merchant, B256::repeat_byte(1))
        );
        r.save(
            std::slice::from_ref(&inv),
            Some(("intake", &serde_json::json!(7))),
        )
        .unwrap();
        assert_eq!(r.invoice(&inv.id).unwrap(), Some(inv.clone()));
        assert_eq!(r.invoices().unwrap(), vec![inv]);
        assert_eq!(r.cursor("intake").unwrap(), Some(serde_json::json!(7)));
        assert_eq!(r.cursor("other").unwrap(), None);
    }
}
