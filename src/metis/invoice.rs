//! Invoice terms: what a merchant signs off-chain (EIP-712) or stores with
//! `createInvoice`, and what every settlement carries.
//!
//! An invoice is its [`Terms`]. Its id is `keccak256(abi.encode(merchant, ref))`
//! ([`super::invoice_id`]); the payment carries `ref` (the EIP-3009 nonce on
//! GOAT, the `OP_RETURN` payload on Bitcoin). A [`SignedInvoice`] holds the
//! terms and the merchant's signature (empty for an invoice created on-chain,
//! whose stored terms hash stands in for it).

use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use alloy::sol_types::SolValue;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::bindings::payment_settlement::PaymentSettlement;
use crate::rail::Rail;

/// The EIP-712 type of the terms (PaymentSettlement's `TERMS_TYPEHASH`).
pub const TERMS_TYPE: &str = "Invoice(address merchant,bytes32 ref,uint8 rail,bytes payee,address asset,uint256 amount,uint64 expiry,address service,bytes32 serviceId)";
/// PaymentSettlement's EIP-712 domain name.
pub const DOMAIN_NAME: &str = "gmrelay PaymentSettlement";
/// PaymentSettlement's EIP-712 domain version.
pub const DOMAIN_VERSION: &str = "2";

/// A fresh random `ref` (32 bytes from `/dev/urandom`): what an invoice's
/// payment carries, or an EIP-3009 nonce.
pub fn random_ref() -> std::io::Result<B256> {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(B256::from(b))
}

/// The terms of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Terms {
    /// The merchant: signer and owner of the invoice.
    pub merchant: Address,
    /// What the payment carries: EIP-3009 nonce (GOAT) or OP_RETURN payload (Bitcoin).
    #[serde(rename = "ref")]
    pub reference: B256,
    /// Where it is paid.
    pub rail: Rail,
    /// Bitcoin scriptPubKey or 20-byte GOAT address.
    pub payee: Bytes,
    /// GOAT token (zero for Bitcoin).
    #[serde(default)]
    pub asset: Address,
    /// Minimum amount (satoshis or token base units).
    pub amount: U256,
    /// Last payment block time (unix seconds, inclusive) that settles.
    pub expiry: u64,
    /// Service contract called on settlement (zero: none).
    #[serde(default)]
    pub service: Address,
    /// Opaque value passed to the service.
    #[serde(default)]
    pub service_id: B256,
}

/// Terms and the merchant's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedInvoice {
    /// The terms.
    pub terms: Terms,
    /// 65-byte EIP-712 signature by the merchant (empty: created on-chain).
    #[serde(default)]
    pub signature: Bytes,
}

/// Why terms or a signature were refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InvoiceError {
    /// The signature is not 65 bytes.
    #[error(
        "invoice {id}: the signature is {len} bytes, a 65-byte (r, s, v) signature is expected"
    )]
    SignatureLength {
        /// The invoice.
        id: B256,
        /// Its length.
        len: usize,
    },
    /// The signature recovers to someone else.
    #[error("invoice {id}: signed by {signer}, not by its merchant {merchant}")]
    WrongSigner {
        /// The invoice.
        id: B256,
        /// Who signed.
        signer: Address,
        /// The merchant.
        merchant: Address,
    },
    /// The signature does not recover at all.
    #[error("invoice {id}: the signature is invalid ({message})")]
    BadSignature {
        /// The invoice.
        id: B256,
        /// Why.
        message: String,
    },
    /// The payee does not fit the rail.
    #[error("invoice {id}: the payee must be {expected}, got {len} bytes")]
    Payee {
        /// The invoice.
        id: B256,
        /// What the rail needs.
        expected: &'static str,
        /// Its length.
        len: usize,
    },
    /// A GOAT invoice without a token, or a Bitcoin invoice with one.
    #[error("invoice {id}: {message}")]
    Asset {
        /// The invoice.
        id: B256,
        /// Why.
        message: &'static str,
    },
    /// Nothing to pay.
    #[error("invoice {id}: the amount is zero")]
    ZeroAmount {
        /// The invoice.
        id: B256,
    },
}

impl Terms {
    /// `keccak256(abi.encode(merchant, ref))`.
    pub fn id(&self) -> B256 {
        super::invoice_id(self.merchant, self.reference)
    }

    /// Checks the shape the rail needs (what `createInvoice` checks; a signed
    /// invoice that fails this could never settle).
    pub fn validate(&self) -> Result<(), InvoiceError> {
        let id = self.id();
        match self.rail {
            Rail::Btc => {
                if self.payee.is_empty() || self.payee.len() > 10_000 {
                    return Err(InvoiceError::Payee {
                        id,
                        expected: "a Bitcoin script of 1..10,000 bytes",
                        len: self.payee.len(),
                    });
                }
                if self.asset != Address::ZERO {
                    return Err(InvoiceError::Asset {
                        id,
                        message: "a Bitcoin invoice takes no asset",
                    });
                }
            }
            Rail::Goat => {
                if self.payee.len() != 20 || self.payee.iter().all(|b| *b == 0) {
                    return Err(InvoiceError::Payee {
                        id,
                        expected: "a non-zero 20-byte address",
                        len: self.payee.len(),
                    });
                }
                if self.asset == Address::ZERO {
                    return Err(InvoiceError::Asset {
                        id,
                        message: "a GOAT invoice needs the token's address",
                    });
                }
            }
        }
        if self.amount.is_zero() {
            return Err(InvoiceError::ZeroAmount { id });
        }
        Ok(())
    }

    /// The EIP-712 struct hash (what `createInvoice` stores).
    pub fn struct_hash(&self) -> B256 {
        keccak256(
            (
                keccak256(TERMS_TYPE.as_bytes()),
                self.merchant,
                self.reference,
                U256::from(self.rail.as_u8()),
                keccak256(&self.payee),
                self.asset,
                self.amount,
                U256::from(self.expiry),
                self.service,
                self.service_id,
            )
                .abi_encode(),
        )
    }

    /// The digest the merchant signs for PaymentSettlement `contract` on `chain_id`.
    pub fn digest(&self, chain_id: u64, contract: Address) -> B256 {
        let domain = keccak256(
            (
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                        .as_bytes(),
                ),
                keccak256(DOMAIN_NAME.as_bytes()),
                keccak256(DOMAIN_VERSION.as_bytes()),
                U256::from(chain_id),
                contract,
            )
                .abi_encode(),
        );
        let mut buf = Vec::with_capacity(66);
        buf.extend_from_slice(&[0x19, 0x01]);
        buf.extend_from_slice(domain.as_slice());
        buf.extend_from_slice(self.struct_hash().as_slice());
        keccak256(buf)
    }

    /// The contract's `Terms` struct.
    pub fn to_sol(&self) -> PaymentSettlement::Terms {
        PaymentSettlement::Terms {
            merchant: self.merchant,
            r#ref: self.reference,
            rail: self.rail.as_u8(),
            payee: self.payee.clone(),
            asset: self.asset,
            amount: self.amount,
            expiry: self.expiry,
            service: self.service,
            serviceId: self.service_id,
        }
    }

    /// From the contract's `Terms` (e.g. an `InvoiceCreated` event); None for an unknown rail.
    pub fn from_sol(t: &PaymentSettlement::Terms) -> Option<Terms> {
        Some(Terms {
            merchant: t.merchant,
            reference: t.r#ref,
            rail: Rail::from_u8(t.rail)?,
            payee: t.payee.clone(),
            asset: t.asset,
            amount: t.amount,
            expiry: t.expiry,
            service: t.service,
            service_id: t.serviceId,
        })
    }
}

impl SignedInvoice {
    /// Signs `terms` with the merchant's key (which must be `terms.merchant`).
    pub fn sign(
        terms: Terms,
        key: &PrivateKeySigner,
        chain_id: u64,
        contract: Address,
    ) -> Result<SignedInvoice, InvoiceError> {
        let id = terms.id();
        if key.address() != terms.merchant {
            return Err(InvoiceError::WrongSigner {
                id,
                signer: key.address(),
                merchant: terms.merchant,
            });
        }
        let sig = key
            .sign_hash_sync(&terms.digest(chain_id, contract))
            .map_err(|e| InvoiceError::BadSignature {
                id,
                message: e.to_string(),
            })?;
        Ok(SignedInvoice {
            terms,
            signature: Bytes::from(sig.as_bytes().to_vec()),
        })
    }

    /// An invoice created on-chain (no signature).
    pub fn on_chain(terms: Terms) -> SignedInvoice {
        SignedInvoice {
            terms,
            signature: Bytes::new(),
        }
    }

    /// The invoice id.
    pub fn id(&self) -> B256 {
        self.terms.id()
    }

    /// Checks the terms' shape and that an EOA merchant signed them for
    /// `contract` on `chain_id`. A merchant that is a contract (ERC-1271)
    /// cannot be checked here: the contract asks it at settlement.
    pub fn verify(&self, chain_id: u64, contract: Address) -> Result<(), InvoiceError> {
        self.terms.validate()?;
        let id = self.id();
        if self.signature.len() != 65 {
            return Err(InvoiceError::SignatureLength {
                id,
                len: self.signature.len(),
            });
        }
        let sig = alloy::primitives::Signature::try_from(self.signature.as_ref()).map_err(|e| {
            InvoiceError::BadSignature {
                id,
                message: e.to_string(),
            }
        })?;
        let signer = sig
            .recover_address_from_prehash(&self.terms.digest(chain_id, contract))
            .map_err(|e| InvoiceError::BadSignature {
                id,
                message: e.to_string(),
            })?;
        if signer != self.terms.merchant {
            return Err(InvoiceError::WrongSigner {
                id,
                signer,
                merchant: self.terms.merchant,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(key: &PrivateKeySigner) -> Terms {
        Terms {
            merchant: key.address(),
            reference: B256::repeat_byte(7),
            rail: Rail::Goat,
            payee: Bytes::from(vec![0x11; 20]),
            asset: Address::repeat_byte(0x22),
            amount: U256::from(1_000_000u64),
            expiry: 4_000_000_000,
            service: Address::ZERO,
            service_id: B256::ZERO,
        }
    }

    #[test]
    fn signed_terms_verify_only_for_their_contract_chain_and_contents() {
        let key = PrivateKeySigner::random();
        let contract = Address::repeat_byte(9);
        let signed = SignedInvoice::sign(terms(&key), &key, 1088, contract).unwrap();
        signed.verify(1088, contract).unwrap();
        assert!(matches!(
            signed.verify(1, contract),
            Err(InvoiceError::WrongSigner { .. })
        ));
        assert!(matches!(
            signed.verify(1088, Address::repeat_byte(8)),
            Err(InvoiceError::WrongSigner { .. })
        ));
        let mut changed = signed.clone();
        changed.terms.amount = U256::from(1u64);
        assert!(matches!(
            changed.verify(1088, contract),
            Err(InvoiceError::WrongSigner { .. })
        ));
        let other = PrivateKeySigner::random();
        assert!(SignedInvoice::sign(terms(&key), &other, 1088, contract).is_err());
        let mut short = signed.clone();
        short.signature = Bytes::from(vec![1; 64]);
        assert!(matches!(
            short.verify(1088, contract),
            Err(InvoiceError::SignatureLength { len: 64, .. })
        ));
    }

    #[test]
    fn terms_round_trip_through_json_and_the_contract_struct() {
        let key = PrivateKeySigner::random();
        let t = terms(&key);
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains("\"ref\""), "{json}");
        assert_eq!(serde_json::from_str::<Terms>(&json).unwrap(), t);
        assert_eq!(Terms::from_sol(&t.to_sol()).unwrap(), t);
        assert!(serde_json::from_str::<Terms>(&json.replace("\"ref\"", "\"reff\"")).is_err());
    }

    #[test]
    fn rail_shapes_are_checked() {
        let key = PrivateKeySigner::random();
        let mut t = terms(&key);
        t.validate().unwrap();
        t.payee = Bytes::from(vec![0x11; 21]);
        assert!(matches!(
            t.validate(),
            Err(InvoiceError::Payee { len: 21, .. })
        ));
        let mut b = terms(&key);
        b.rail = Rail::Btc;
        assert!(matches!(b.validate(), Err(InvoiceError::Asset { .. })));
        b.asset = Address::ZERO;
        b.validate().unwrap();
        b.amount = U256::ZERO;
        assert!(matches!(b.validate(), Err(InvoiceError::ZeroAmount { .. })));
    }
}
