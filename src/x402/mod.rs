//! x402 across chains: the wire types ([`wire`]), the `exact` schemes gmrelay
//! settles ([`evm`] on GOAT, [`btc`] on Bitcoin), an example paid resource
//! ([`example`], `gmrelay x402 serve-example`) and an agent that pays
//! ([`agent`], `gmrelay x402 pay`). The facilitator itself runs inside the
//! daemon: [`crate::daemon::facilitator`].

pub mod agent;
pub mod btc;
pub mod evm;
pub mod example;
pub mod wire;

use serde_json::Value;

use crate::metis::invoice::SignedInvoice;
use wire::{Problem, Reason};

/// The merchant's signed invoice terms a payment's requirements carry in
/// `extra.gmrelay.invoice` (none: `Ok(None)`).
pub fn invoice_in(extra: Option<&Value>) -> Result<Option<SignedInvoice>, Problem> {
    let Some(v) = extra
        .and_then(|e| e.get("gmrelay"))
        .and_then(|g| g.get("invoice"))
    else {
        return Ok(None);
    };
    serde_json::from_value(v.clone()).map(Some).map_err(|e| {
        Problem::new(
            Reason::InvalidInvoice,
            format!("extra.gmrelay.invoice: {e}"),
        )
    })
}
