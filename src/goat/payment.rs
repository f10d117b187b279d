//! Stablecoin payments in receipts: EIP-3009 `transferWithAuthorization`
//! (x402's "exact" scheme on EVM chains) and, optionally, plain ERC-20
//! transfers.
//!
//! An EIP-3009 payment is a receipt holding `AuthorizationUsed(authorizer,
//! nonce)` and `Transfer(authorizer, payee, value)`, both emitted by the
//! same configured token contract. The emitting address of every log is
//! checked: a look-alike contract emitting the same events never counts.
//! The authorization nonce is the invoice id (bytes32).

use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::SolEvent;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::receipts::{GoatReceipt, ReceiptLog};

alloy::sol! {
    /// ERC-20 `Transfer`.
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// EIP-3009 `AuthorizationUsed`.
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
}

/// `keccak256("Transfer(address,address,uint256)")`.
pub const TRANSFER_TOPIC: B256 = Transfer::SIGNATURE_HASH;
/// `keccak256("AuthorizationUsed(address,bytes32)")`.
pub const AUTHORIZATION_USED_TOPIC: B256 = AuthorizationUsed::SIGNATURE_HASH;

/// Indexes of a payment's logs inside its receipt (0-based, receipt-local).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogIndexes {
    /// The `AuthorizationUsed` log; `null` for a plain ERC-20 transfer.
    pub authorization_used: Option<u64>,
    /// The `Transfer` log.
    pub transfer: u64,
}

/// What a payment moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentSummary {
    /// The token contract (the emitter of both logs).
    pub token: Address,
    /// The payer (the authorizer).
    pub from: Address,
    /// The payee.
    pub to: Address,
    /// Amount in the token's base units.
    pub value: U256,
    /// The EIP-3009 nonce (the invoice id); `null` for a plain transfer.
    pub nonce: Option<B256>,
}

/// Which payments count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentPolicy {
    /// Accepted token contracts.
    pub tokens: Vec<Address>,
    /// Accepted payees (empty: any payee).
    pub payees: Vec<Address>,
    /// Also accept plain ERC-20 `Transfer`s without an EIP-3009 authorization.
    pub allow_plain_transfers: bool,
}

/// A payment found in a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPayment {
    /// The transaction's index in its block.
    pub tx_index: u64,
    /// Where its logs are.
    pub log_indexes: LogIndexes,
    /// What it moved.
    pub summary: PaymentSummary,
}

/// An invoice a verified payment is checked against; `None` fields are not checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invoice {
    /// The token it must be paid in.
    pub token: Option<Address>,
    /// The payee.
    pub payee: Option<Address>,
    /// The minimum amount, in base units.
    pub min_amount: Option<U256>,
    /// The invoice id: the EIP-3009 nonce.
    pub nonce: Option<B256>,
}

/// Why logs are not the payment they are claimed to be.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PaymentError {
    /// The receipt has no log at this index.
    #[error("the receipt has no log {index} ({count} logs)")]
    NoSuchLog {
        /// The index.
        index: u64,
        /// Logs in the receipt.
        count: usize,
    },
    /// The log is not the event it should be.
    #[error("log {index} is not a well-formed `{event}` event: {message}")]
    NotEvent {
        /// The log index.
        index: u64,
        /// The event expected.
        event: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The two logs were emitted by different contracts.
    #[error("AuthorizationUsed was emitted by {authorization}, Transfer by {transfer}: not one token's payment")]
    DifferentEmitters {
        /// Emitter of AuthorizationUsed.
        authorization: Address,
        /// Emitter of Transfer.
        transfer: Address,
    },
    /// The transfer does not move the authorizer's tokens.
    #[error("Transfer moves tokens of {from}, the authorization is {authorizer}'s")]
    AuthorizerMismatch {
        /// The authorizer.
        authorizer: Address,
        /// The Transfer's `from`.
        from: Address,
    },
    /// A plain transfer when only EIP-3009 payments are accepted.
    #[error("plain ERC-20 transfer without an EIP-3009 authorization (set goat.allow_plain_transfers to accept these)")]
    PlainTransferRefused,
    /// Logs that differ from the payment summary the proof claims.
    #[error("the logs show {found:?}, the proof claims {claimed:?}")]
    SummaryMismatch {
        /// Decoded from the logs.
        found: Box<PaymentSummary>,
        /// Claimed by the proof.
        claimed: Box<PaymentSummary>,
    },
    /// Paid in another token than the invoice's.
    #[error("paid in token {paid}, the invoice asks for {expected}")]
    WrongToken {
        /// The token paid.
        paid: Address,
        /// The invoice's token.
        expected: Address,
    },
    /// Paid in a token the configuration does not accept.
    #[error("paid in token {paid}, which is not one of goat.tokens {accepted:?}")]
    TokenNotAccepted {
        /// The token paid.
        paid: Address,
        /// The configured tokens.
        accepted: Vec<Address>,
    },
    /// Paid to a payee the configuration does not accept.
    #[error("paid to {paid}, which is not one of goat.payees {accepted:?}")]
    PayeeNotAccepted {
        /// The payee paid.
        paid: Address,
        /// The configured payees.
        accepted: Vec<Address>,
    },
    /// Paid to someone else.
    #[error("pays {paid}, the invoice's payee is {expected}")]
    WrongPayee {
        /// The payee paid.
        paid: Address,
        /// The invoice's payee.
        expected: Address,
    },
    /// Too little.
    #[error("pays {paid} base units, the invoice asks at least {required}")]
    AmountTooLow {
        /// Paid.
        paid: U256,
        /// Required.
        required: U256,
    },
    /// Another invoice id.
    #[error("authorization nonce {found}, the invoice id is {expected}")]
    WrongInvoice {
        /// The nonce of the payment (`None` for a plain transfer).
        found: String,
        /// The invoice id.
        expected: B256,
    },
}

fn topic_address(t: &B256) -> Option<Address> {
    t[..12]
        .iter()
        .all(|b| *b == 0)
        .then(|| Address::from_slice(&t[12..]))
}

fn log_at(receipt: &GoatReceipt, index: u64) -> Result<&ReceiptLog, PaymentError> {
    usize::try_from(index)
        .ok()
        .and_then(|i| receipt.logs.get(i))
        .ok_or(PaymentError::NoSuchLog {
            index,
            count: receipt.logs.len(),
        })
}

/// Decodes an ERC-20 `Transfer` strictly: three topics, 32 bytes of data,
/// clean address words. Returns `(from, to, value)`.
pub fn decode_transfer(
    log: &ReceiptLog,
    index: u64,
) -> Result<(Address, Address, U256), PaymentError> {
    let bad = |message: &str| PaymentError::NotEvent {
        index,
        event: "Transfer",
        message: message.into(),
    };
    if log.topics.first() != Some(&TRANSFER_TOPIC) {
        return Err(bad("first topic is not Transfer(address,address,uint256)"));
    }
    if log.topics.len() != 3 {
        return Err(bad("expected 3 topics (ERC-721 transfers have 4)"));
    }
    if log.data.len() != 32 {
        return Err(bad("expected 32 bytes of data"));
    }
    let from = topic_address(&log.topics[1]).ok_or_else(|| bad("`from` is not an address"))?;
    let to = topic_address(&log.topics[2]).ok_or_else(|| bad("`to` is not an address"))?;
    Ok((from, to, U256::from_be_slice(&log.data)))
}

/// Decodes an EIP-3009 `AuthorizationUsed` strictly. Returns `(authorizer, nonce)`.
pub fn decode_authorization_used(
    log: &ReceiptLog,
    index: u64,
) -> Result<(Address, B256), PaymentError> {
    let bad = |message: &str| PaymentError::NotEvent {
        index,
        event: "AuthorizationUsed",
        message: message.into(),
    };
    if log.topics.first() != Some(&AUTHORIZATION_USED_TOPIC) {
        return Err(bad("first topic is not AuthorizationUsed(address,bytes32)"));
    }
    if log.topics.len() != 3 || !log.data.is_empty() {
        return Err(bad("expected 3 topics and no data"));
    }
    let authorizer =
        topic_address(&log.topics[1]).ok_or_else(|| bad("`authorizer` is not an address"))?;
    Ok((authorizer, log.topics[2]))
}

/// Decodes the payment the logs at `indexes` make, checking that both logs
/// come from one contract and that the transfer spends the authorizer's
/// tokens. Plain transfers are refused unless `allow_plain`.
pub fn payment_at(
    receipt: &GoatReceipt,
    indexes: &LogIndexes,
    allow_plain: bool,
) -> Result<PaymentSummary, PaymentError> {
    let transfer_log = log_at(receipt, indexes.transfer)?;
    let (from, to, value) = decode_transfer(transfer_log, indexes.transfer)?;
    let nonce = match indexes.authorization_used {
        Some(ai) => {
            let auth_log = log_at(receipt, ai)?;
            let (authorizer, nonce) = decode_authorization_used(auth_log, ai)?;
            if auth_log.address != transfer_log.address {
                return Err(PaymentError::DifferentEmitters {
                    authorization: auth_log.address,
                    transfer: transfer_log.address,
                });
            }
            if authorizer != from {
                return Err(PaymentError::AuthorizerMismatch { authorizer, from });
            }
            Some(nonce)
        }
        None if allow_plain => None,
        None => return Err(PaymentError::PlainTransferRefused),
    };
    Ok(PaymentSummary {
        token: transfer_log.address,
        from,
        to,
        value,
        nonce,
    })
}

/// Finds the payments a successful receipt makes under `policy`: for each
/// `AuthorizationUsed` from a configured token, the `Transfer` of the same
/// token and authorizer to an accepted payee (the nearest one after it);
/// then, when allowed, plain transfers of configured tokens to accepted
/// payees that no authorization claimed.
pub fn find_payments(
    receipt: &GoatReceipt,
    tx_index: u64,
    policy: &PaymentPolicy,
) -> Vec<FoundPayment> {
    let mut out = Vec::new();
    if !receipt.succeeded() {
        return out;
    }
    let payee_ok = |a: &Address| policy.payees.is_empty() || policy.payees.contains(a);
    let mut claimed = vec![false; receipt.logs.len()];
    for (ai, log) in receipt.logs.iter().enumerate() {
        if !policy.tokens.contains(&log.address) {
            continue;
        }
        let Ok((authorizer, _)) = decode_authorization_used(log, ai as u64) else {
            continue;
        };
        // Nearest matching Transfer: after the authorization first (FiatToken
        // order), then before it.
        let candidates = (ai + 1..receipt.logs.len()).chain((0..ai).rev());
        for ti in candidates {
            if claimed[ti] {
                continue;
            }
            let t = &receipt.logs[ti];
            if t.address != log.address {
                continue;
            }
            let Ok((from, to, _)) = decode_transfer(t, ti as u64) else {
                continue;
            };
            if from != authorizer || !payee_ok(&to) {
                continue;
            }
            let indexes = LogIndexes {
                authorization_used: Some(ai as u64),
                transfer: ti as u64,
            };
            if let Ok(summary) = payment_at(receipt, &indexes, false) {
                claimed[ti] = true;
                out.push(FoundPayment {
                    tx_index,
                    log_indexes: indexes,
                    summary,
                });
                break;
            }
        }
    }
    if policy.allow_plain_transfers {
        for (ti, t) in receipt.logs.iter().enumerate() {
            if claimed[ti] || !policy.tokens.contains(&t.address) {
                continue;
            }
            let Ok((_, to, _)) = decode_transfer(t, ti as u64) else {
                continue;
            };
            if !payee_ok(&to) {
                continue;
            }
            let indexes = LogIndexes {
                authorization_used: None,
                transfer: ti as u64,
            };
            if let Ok(summary) = payment_at(receipt, &indexes, true) {
                out.push(FoundPayment {
                    tx_index,
                    log_indexes: indexes,
                    summary,
                });
            }
        }
    }
    out
}

/// Checks a payment against an invoice.
pub fn check_invoice(p: &PaymentSummary, invoice: &Invoice) -> Result<(), PaymentError> {
    if let Some(t) = invoice.token {
        if p.token != t {
            return Err(PaymentError::WrongToken {
                paid: p.token,
                expected: t,
            });
        }
    }
    if let Some(payee) = invoice.payee {
        if p.to != payee {
            return Err(PaymentError::WrongPayee {
                paid: p.to,
                expected: payee,
            });
        }
    }
    if let Some(min) = invoice.min_amount {
        if p.value < min {
            return Err(PaymentError::AmountTooLow {
                paid: p.value,
                required: min,
            });
        }
    }
    if let Some(id) = invoice.nonce {
        if p.nonce != Some(id) {
            return Err(PaymentError::WrongInvoice {
                found: p
                    .nonce
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "none (plain transfer)".into()),
                expected: id,
            });
        }
    }
    Ok(())
}

/// Checks a payment against the configured policy: its token must be one of
/// `tokens` (a look-alike contract emitting the same events never counts),
/// its payee one of `payees` when any are configured.
pub fn check_policy(p: &PaymentSummary, policy: &PaymentPolicy) -> Result<(), PaymentError> {
    if !policy.tokens.contains(&p.token) {
        return Err(PaymentError::TokenNotAccepted {
            paid: p.token,
            accepted: policy.tokens.clone(),
        });
    }
    if !policy.payees.is_empty() && !policy.payees.contains(&p.to) {
        return Err(PaymentError::PayeeNotAccepted {
            paid: p.to,
            accepted: policy.payees.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goat::receipts::ReceiptOutcome;
    use alloy::primitives::{Bloom, Bytes};

    fn word(a: Address) -> B256 {
        a.into_word()
    }

    fn transfer(token: Address, from: Address, to: Address, v: u64) -> ReceiptLog {
        ReceiptLog {
            address: token,
            topics: vec![TRANSFER_TOPIC, word(from), word(to)],
            data: Bytes::from(U256::from(v).to_be_bytes::<32>().to_vec()),
        }
    }

    fn auth(token: Address, who: Address, nonce: B256) -> ReceiptLog {
        ReceiptLog {
            address: token,
            topics: vec![AUTHORIZATION_USED_TOPIC, word(who), nonce],
            data: Bytes::new(),
        }
    }

    fn receipt(logs: Vec<ReceiptLog>) -> GoatReceipt {
        GoatReceipt {
            tx_type: 2,
            outcome: ReceiptOutcome::Status(true),
            cumulative_gas_used: 50_000,
            logs_bloom: Bloom::default(),
            logs,
        }
    }

    const TOKEN: Address = Address::repeat_byte(0x70);
    const FAKE: Address = Address::repeat_byte(0x71);
    const PAYER: Address = Address::repeat_byte(0x01);
    const PAYEE: Address = Address::repeat_byte(0x02);

    fn policy() -> PaymentPolicy {
        PaymentPolicy {
            tokens: vec![TOKEN],
            payees: vec![PAYEE],
            allow_plain_transfers: false,
        }
    }

    #[test]
    fn topics_are_the_standard_ones() {
        assert_eq!(
            TRANSFER_TOPIC,
            alloy::primitives::keccak256("Transfer(address,address,uint256)")
        );
        assert_eq!(
            AUTHORIZATION_USED_TOPIC,
            alloy::primitives::keccak256("AuthorizationUsed(address,bytes32)")
        );
    }

    #[test]
    fn eip3009_payment_is_found() {
        let nonce = B256::repeat_byte(0xaa);
        let r = receipt(vec![
            auth(TOKEN, PAYER, nonce),
            transfer(TOKEN, PAYER, PAYEE, 5),
        ]);
        let found = find_payments(&r, 3, &policy());
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].log_indexes,
            LogIndexes {
                authorization_used: Some(0),
                transfer: 1
            }
        );
        assert_eq!(found[0].summary.nonce, Some(nonce));
        assert_eq!(found[0].summary.value, U256::from(5));
        let inv = Invoice {
            token: Some(TOKEN),
            payee: Some(PAYEE),
            min_amount: Some(U256::from(5)),
            nonce: Some(nonce),
        };
        check_invoice(&found[0].summary, &inv).unwrap();
        let too_much = Invoice {
            min_amount: Some(U256::from(6)),
            ..inv.clone()
        };
        assert!(check_invoice(&found[0].summary, &too_much).is_err());
        let other_id = Invoice {
            nonce: Some(B256::ZERO),
            ..inv
        };
        assert!(check_invoice(&found[0].summary, &other_id).is_err());
    }

    #[test]
    fn look_alike_token_never_counts() {
        let nonce = B256::repeat_byte(0xaa);
        // Both logs from the look-alike.
        let r = receipt(vec![
            auth(FAKE, PAYER, nonce),
            transfer(FAKE, PAYER, PAYEE, 5),
        ]);
        assert!(find_payments(&r, 0, &policy()).is_empty());
        // Authorization from the real token, transfer from the look-alike.
        let r = receipt(vec![
            auth(TOKEN, PAYER, nonce),
            transfer(FAKE, PAYER, PAYEE, 5),
        ]);
        assert!(find_payments(&r, 0, &policy()).is_empty());
        let idx = LogIndexes {
            authorization_used: Some(0),
            transfer: 1,
        };
        assert!(matches!(
            payment_at(&r, &idx, false),
            Err(PaymentError::DifferentEmitters { .. })
        ));
    }

    #[test]
    fn other_payee_or_authorizer_does_not_count() {
        let nonce = B256::repeat_byte(0xaa);
        let r = receipt(vec![
            auth(TOKEN, PAYER, nonce),
            transfer(TOKEN, PAYER, Address::repeat_byte(9), 5),
        ]);
        assert!(find_payments(&r, 0, &policy()).is_empty());
        let r = receipt(vec![
            auth(TOKEN, PAYER, nonce),
            transfer(TOKEN, Address::repeat_byte(8), PAYEE, 5),
        ]);
        assert!(find_payments(&r, 0, &policy()).is_empty());
        let idx = LogIndexes {
            authorization_used: Some(0),
            transfer: 1,
        };
        assert!(matches!(
            payment_at(&r, &idx, false),
            Err(PaymentError::AuthorizerMismatch { .. })
        ));
    }

    #[test]
    fn plain_transfers_only_when_allowed() {
        let r = receipt(vec![transfer(TOKEN, PAYER, PAYEE, 7)]);
        assert!(find_payments(&r, 0, &policy()).is_empty());
        let mut p = policy();
        p.allow_plain_transfers = true;
        let found = find_payments(&r, 0, &p);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].summary.nonce, None);
        let idx = LogIndexes {
            authorization_used: None,
            transfer: 0,
        };
        assert_eq!(
            payment_at(&r, &idx, false),
            Err(PaymentError::PlainTransferRefused)
        );
    }

    #[test]
    fn failed_receipt_pays_nothing_and_malformed_logs_are_refused() {
        let nonce = B256::repeat_byte(0xaa);
        let mut r = receipt(vec![
            auth(TOKEN, PAYER, nonce),
            transfer(TOKEN, PAYER, PAYEE, 5),
        ]);
        r.outcome = ReceiptOutcome::Status(false);
        assert!(find_payments(&r, 0, &policy()).is_empty());
        let mut t = transfer(TOKEN, PAYER, PAYEE, 5);
        t.topics.push(B256::ZERO); // ERC-721 shape
        assert!(decode_transfer(&t, 0).is_err());
        let mut t = transfer(TOKEN, PAYER, PAYEE, 5);
        t.topics[1] = B256::repeat_byte(0xff); // dirty address word
        assert!(decode_transfer(&t, 0).is_err());
    }

    #[test]
    fn policy_refuses_look_alike_tokens_and_other_payees() {
        let token = Address::repeat_byte(1);
        let look_alike = Address::repeat_byte(2);
        let payee = Address::repeat_byte(3);
        let summary = |t: Address, to: Address| PaymentSummary {
            token: t,
            from: Address::repeat_byte(9),
            to,
            value: U256::from(5u64),
            nonce: Some(B256::repeat_byte(7)),
        };
        let policy = PaymentPolicy {
            tokens: vec![token],
            payees: vec![payee],
            allow_plain_transfers: false,
        };
        assert_eq!(check_policy(&summary(token, payee), &policy), Ok(()));
        assert!(matches!(
            check_policy(&summary(look_alike, payee), &policy),
            Err(PaymentError::TokenNotAccepted { .. })
        ));
        assert!(matches!(
            check_policy(&summary(token, Address::repeat_byte(4)), &policy),
            Err(PaymentError::PayeeNotAccepted { .. })
        ));
        let any_payee = PaymentPolicy {
            payees: vec![],
            ..policy
        };
        assert_eq!(
            check_policy(&summary(token, Address::repeat_byte(4)), &any_payee),
            Ok(())
        );
    }
}
