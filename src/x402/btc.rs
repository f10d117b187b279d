//! gmrelay's `exact` scheme on Bitcoin (`bip122:<genesis prefix>`; no
//! published x402 scheme exists for Bitcoin, so this one is documented in the
//! README). The requirements carry the merchant's signed invoice terms in
//! `extra.gmrelay.invoice` and the bytes to name in `extra.opReturn`; the
//! payload is `{transaction: <signed raw transaction, hex>}` paying `payTo`
//! at least `amount` satoshis with its first `OP_RETURN <32 bytes>` output
//! naming the invoice's `ref`, which is what PaymentSettlement checks.

use bitcoin::consensus::encode::deserialize;
use bitcoin::{ScriptBuf, Transaction};
use serde_json::Value;

use super::wire::{Problem, Reason, Requirements};
use crate::btc::network::BtcNetwork;
use crate::metis::invoice::SignedInvoice;
use crate::rail::Rail;

/// The largest payment transaction accepted, bytes.
pub const MAX_TX_BYTES: usize = 100_000;

/// The asset of a Bitcoin offer: CAIP-19 `bip122:<genesis prefix>/slip44:0`.
pub fn asset(network: BtcNetwork) -> String {
    format!("{}/slip44:0", network.caip2())
}

/// What the requirements ask, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtcTerms {
    /// The payee's script.
    pub script: ScriptBuf,
    /// Satoshis.
    pub amount: u64,
    /// The merchant's invoice the payment settles.
    pub invoice: SignedInvoice,
}

fn bad(reason: Reason, m: impl Into<String>) -> Problem {
    Problem::new(reason, m)
}

/// Reads the requirements of an `exact` payment on `network`.
pub fn terms(req: &Requirements, network: BtcNetwork) -> Result<BtcTerms, Problem> {
    if req.network.to_string() != network.caip2() {
        return Err(bad(
            Reason::InvalidNetwork,
            format!(
                "network {} is not Bitcoin {network} ({})",
                req.network,
                network.caip2()
            ),
        ));
    }
    let r = Reason::InvalidRequirements;
    if req.asset != asset(network) {
        return Err(bad(
            r,
            format!("asset `{}` is not {}", req.asset, asset(network)),
        ));
    }
    let script = crate::app::parse_script(&req.pay_to, network)
        .map_err(|e| bad(r, format!("payTo: {e:#}")))?;
    let amount: u64 = req
        .amount
        .parse()
        .map_err(|_| bad(r, format!("amount `{}` is not whole satoshis", req.amount)))?;
    let invoice = super::invoice_in(req.extra.as_ref())?.ok_or_else(|| {
        bad(
            Reason::InvalidInvoice,
            "extra.gmrelay.invoice is missing: a Bitcoin offer carries the merchant's signed invoice",
        )
    })?;
    let t = &invoice.terms;
    let ri = Reason::InvalidInvoice;
    if t.rail != Rail::Btc {
        return Err(bad(
            ri,
            format!("invoice {} is a {} invoice", t.id(), t.rail),
        ));
    }
    if t.payee.as_ref() != script.as_bytes() {
        return Err(bad(
            ri,
            format!("invoice {}: its payee is not payTo {}", t.id(), req.pay_to),
        ));
    }
    if t.amount != alloy::primitives::U256::from(amount) {
        return Err(bad(
            ri,
            format!(
                "invoice {}: amount {} is not {amount} sat",
                t.id(),
                t.amount
            ),
        ));
    }
    if let Some(op) = req
        .extra
        .as_ref()
        .and_then(|e| e.get("opReturn"))
        .and_then(Value::as_str)
    {
        if op.trim_start_matches("0x") != hex::encode(t.reference) {
            return Err(bad(
                ri,
                format!("extra.opReturn {op} is not invoice {}'s ref", t.id()),
            ));
        }
    }
    Ok(BtcTerms {
        script,
        amount,
        invoice,
    })
}

/// Reads `payload` = `{transaction: <hex>}`.
pub fn payment(payload: &Value) -> Result<Transaction, Problem> {
    let r = Reason::InvalidPayload;
    let hex_tx = payload
        .get("transaction")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(r, "payload.transaction: missing or not a string"))?;
    if hex_tx.len() > 2 * MAX_TX_BYTES {
        return Err(bad(
            r,
            format!("payload.transaction: more than {MAX_TX_BYTES} bytes"),
        ));
    }
    let bytes = hex::decode(hex_tx).map_err(|e| bad(r, format!("payload.transaction: {e}")))?;
    deserialize(&bytes).map_err(|e| {
        bad(
            Reason::InvalidBtcTransaction,
            format!("payload.transaction: not a Bitcoin transaction ({e})"),
        )
    })
}

/// The checks that need no node: the transaction pays the invoice as
/// PaymentSettlement will require.
pub fn check(t: &BtcTerms, tx: &Transaction) -> Result<(), Problem> {
    crate::btc::proof::find_payment(tx, &t.script, t.amount, &t.invoice.terms.reference.0)
        .map(|_| ())
        .map_err(|e| {
            bad(
                Reason::InvalidBtcTransaction,
                format!("transaction {}: {e}", tx.compute_txid()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metis::invoice::Terms;
    use alloy::primitives::{Address, Bytes, B256, U256};

    const PAYEE: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

    fn requirements(extra: Value) -> Requirements {
        serde_json::from_value(serde_json::json!({
            "scheme": "exact",
            "network": BtcNetwork::Regtest.caip2(),
            "amount": "50000",
            "asset": asset(BtcNetwork::Regtest),
            "payTo": PAYEE,
            "maxTimeoutSeconds": 600,
            "extra": extra,
        }))
        .unwrap()
    }

    fn invoice(amount: u64) -> SignedInvoice {
        let script = crate::app::parse_script(PAYEE, BtcNetwork::Regtest).unwrap();
        SignedInvoice::on_chain(Terms {
            merchant: Address::repeat_byte(1),
            reference: B256::repeat_byte(9),
            rail: Rail::Btc,
            payee: Bytes::from(script.to_bytes()),
            asset: Address::ZERO,
            amount: U256::from(amount),
            expiry: 10,
            service: Address::ZERO,
            service_id: B256::ZERO,
        })
    }

    fn pay(t: &BtcTerms, amount: u64, reference: [u8; 32]) -> Transaction {
        let payer = crate::devnet::Payer::from_seed([0x11; 32]);
        let prev = bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(1_000_000),
            script_pubkey: payer.address.script_pubkey(),
        };
        payer
            .pay(
                (bitcoin::OutPoint::null(), prev),
                &t.script,
                bitcoin::Amount::from_sat(amount),
                &reference,
                bitcoin::Amount::from_sat(1_000),
            )
            .unwrap()
    }

    #[test]
    fn an_offer_with_its_invoice_is_read_and_a_payment_checked() {
        let extra = serde_json::json!({"gmrelay": {"invoice": invoice(50_000)},
            "opReturn": hex::encode([9u8; 32])});
        let t = terms(&requirements(extra), BtcNetwork::Regtest).unwrap();
        check(&t, &pay(&t, 50_000, [9; 32])).unwrap();
        let short = check(&t, &pay(&t, 49_999, [9; 32])).unwrap_err();
        assert_eq!(short.reason, Reason::InvalidBtcTransaction);
        let other_ref = check(&t, &pay(&t, 50_000, [8; 32])).unwrap_err();
        assert!(other_ref.message.contains("OP_RETURN"), "{other_ref}");
        // Round trip through the payload.
        let tx = pay(&t, 50_000, [9; 32]);
        let payload =
            serde_json::json!({"transaction": bitcoin::consensus::encode::serialize_hex(&tx)});
        assert_eq!(payment(&payload).unwrap(), tx);
    }

    #[test]
    fn offers_that_do_not_hold_together_are_refused_by_name() {
        let good = serde_json::json!({"gmrelay": {"invoice": invoice(50_000)}});
        let mut wrong_network = requirements(good.clone());
        wrong_network.network = "bip122:000000000019d6689c085ae165831e93".parse().unwrap();
        let cases = [
            (requirements(serde_json::json!({})), Reason::InvalidInvoice),
            (
                requirements(serde_json::json!({"gmrelay": {"invoice": invoice(1)}})),
                Reason::InvalidInvoice,
            ),
            (
                requirements(
                    serde_json::json!({"gmrelay": {"invoice": invoice(50_000)}, "opReturn": "00"}),
                ),
                Reason::InvalidInvoice,
            ),
            (wrong_network, Reason::InvalidNetwork),
        ];
        for (req, want) in cases {
            let e = terms(&req, BtcNetwork::Regtest).unwrap_err();
            assert_eq!(e.reason, want, "{e}");
        }
        for bad_tx in [
            serde_json::json!({}),
            serde_json::json!({"transaction": "zz"}),
        ] {
            assert_eq!(payment(&bad_tx).unwrap_err().reason, Reason::InvalidPayload);
        }
        assert_eq!(
            payment(&serde_json::json!({"transaction": "00"}))
                .unwrap_err()
                .reason,
            Reason::InvalidBtcTransaction
        );
    }
}
