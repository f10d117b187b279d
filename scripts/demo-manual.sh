#!/usr/bin/env bash
# The gmrelay demo: a regtest devnet, and a Bitcoin payment taken from
# invoice to verified proof through the gmrelay commands an operator uses;
# then a GOAT stablecoin payment, and both invoices (one signed off-chain, one
# created on-chain) settled on a Metis devnet (anvil, chain 1088, Shanghai).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${CARGO_TARGET_DIR:-$HOME/.cache/gmrelay/target}/release/gmrelay"
DEVNET="$PWD/.devnet"
export GMRELAY_DATA_DIR="$DEVNET/gmrelay"
export GMRELAY_LOG_LEVEL="${GMRELAY_LOG_LEVEL:-warn}"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ gmrelay %s\n' "$*"; "$BIN" "$@"; }

# A fresh devnet each time; stop the node whatever happens.
if compgen -G "$GMRELAY_DATA_DIR/*.pid" >/dev/null; then "$BIN" devnet stop >/dev/null 2>&1 || true; fi
rm -rf "$DEVNET"
mkdir -p "$GMRELAY_DATA_DIR"
trap '"$BIN" devnet stop >/dev/null 2>&1 || true' EXIT

step "Start a regtest bitcoind (built from Bitcoin Core's source)"
out="$(run devnet start)"; echo "$out"
export GMRELAY_BTC_RPC_URL="$(sed -n 's/^rpc_url = "\(.*\)"/\1/p' <<<"$out")"
export GMRELAY_BTC_COOKIE_FILE="$(sed -n 's/^cookie_file = "\(.*\)"/\1/p' <<<"$out")"

step "Mine 101 blocks to the devnet payer (its first coinbase matures)"
run devnet mine 101

step "Sync and validate every header from the regtest genesis checkpoint"
run headers sync
run headers status

step "A merchant's invoice: 0.0005 BTC to its address, the invoice's ref in OP_RETURN"
# The merchant's Metis account (anvil's first devnet key, public) signs its
# invoice terms off-chain (EIP-712, no transaction); the invoice id is
# keccak256(abi.encode(merchant, ref)) and the payment carries the ref.
export GMRELAY_METIS_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
PAYEE="bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
SALT="$(printf 'x402-demo-invoice-%s' "$(date +%s%N)" | sha256sum | cut -c1-64)"
INVOICE="$(run metis invoice id --ref "$SALT" | tail -1)"
echo "payee   $PAYEE"
echo "ref     0x$SALT"
echo "invoice $INVOICE"

step "The agent pays: a P2WPKH transaction built and signed in Rust, broadcast to bitcoind"
printf '$ gmrelay devnet pay --to %s --amount 50000 --invoice %s\n' "$PAYEE" "$SALT"
TXID="$("$BIN" devnet pay --to "$PAYEE" --amount 50000 --invoice "$SALT")"
echo "$TXID"

step "Six confirmations, then sync"
run devnet mine 6
run headers sync

step "Prove the payment (Merkle branch + coinbase branch + header)"
run btc prove --txid "$TXID" --out "$DEVNET/btc-proof.json"

step "Verify it against gmrelay's own header chain, and match the invoice"
run btc verify "$DEVNET/btc-proof.json" --min-confirmations 6 \
  --pay-to "$PAYEE" --amount 50000 --invoice "$SALT"

step "A tampered proof is refused"
python3 - "$DEVNET/btc-proof.json" "$DEVNET/btc-proof-tampered.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
raw = bytearray.fromhex(p["tx"]["raw"]); raw[-5] ^= 1; p["tx"]["raw"] = raw.hex()
json.dump(p, open(sys.argv[2], "w"), indent=2)
PY
if run btc verify "$DEVNET/btc-proof-tampered.json"; then echo "tampered proof accepted!" >&2; exit 1; fi

step "Reorg the payment's block away: the proof stops verifying"
run devnet reorg 7
run headers sync
if run btc verify "$DEVNET/btc-proof.json"; then echo "reorged-out proof accepted!" >&2; exit 1; fi

step "The payment went back to the mempool and was mined again on the new chain: prove it anew"
run devnet mine 5
run headers sync
run btc prove --txid "$TXID" --out "$DEVNET/btc-proof-2.json"
run btc verify "$DEVNET/btc-proof-2.json" --min-confirmations 6 \
  --pay-to "$PAYEE" --amount 50000 --invoice "$SALT"

step "Metis and GOAT devnets: anvil --chain-id 1088 --hardfork shanghai, anvil --chain-id 2345"
out="$(run devnet anvil-start --chain-id 1088)"; echo "$out"
export GMRELAY_METIS_RPC_URL="$(sed -n 's/^rpc_url = "\(.*\)"/\1/p' <<<"$out")"
out="$(run devnet anvil-start --chain-id 2345)"; echo "$out"
export GMRELAY_GOAT_RPC_URL="$(sed -n 's/^rpc_url = "\(.*\)"/\1/p' <<<"$out")"
export GMRELAY_GOAT_CHECKPOINT_FILE="$PWD/headers/goat-devnet.json"
export GMRELAY_GOAT_FINALITY=2

step "Deploy BtcLightClient (from the stored regtest checkpoint), GoatHeaderStore (3-of-5 devnet committee), PaymentSettlement (6 BTC confirmations), and the GOAT test stablecoin"
run contracts deploy
TOKEN="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["goat_test_token"])' "$GMRELAY_DATA_DIR/deployment.json")"
export GMRELAY_GOAT_TOKENS="$TOKEN"

step "One more Bitcoin block (six confirmations for the payment), sync, relay the headers to BtcLightClient"
run devnet mine 1
run headers sync
run metis relay-headers

step "The merchant signs the BTC invoice (off-chain), then settle it with gmrelay's proof"
run metis invoice sign --ref "$SALT" --rail btc --payee "$PAYEE" --amount 50000 --expiry +3600 --out "$DEVNET/btc-invoice.json" >/dev/null
cat "$DEVNET/btc-invoice.json"; echo
run metis invoice show --id "$INVOICE"
run metis settle "$DEVNET/btc-proof-2.json" --invoice "$DEVNET/btc-invoice.json"
run metis invoice show --id "$INVOICE"

step "A GOAT invoice created on-chain: 1 USDC (6 decimals) to the merchant, settled from an EIP-3009 payment"
GOAT_PAYEE=0x70997970C51812dc3A010C7d01b50e0d17dc79C8
GOAT_SALT="$(printf 'x402-demo-goat-invoice-%s' "$(date +%s%N)" | sha256sum | cut -c1-64)"
out="$(run metis invoice create --ref "$GOAT_SALT" --rail goat --payee "$GOAT_PAYEE" --amount 1000000 --expiry +3600 --out "$DEVNET/goat-invoice.json")"; echo "$out"
GOAT_INVOICE="$(sed -n 's/^invoice \(0x[0-9a-f]*\) created.*/\1/p' <<<"$out")"
printf '$ gmrelay devnet goat-pay --token %s --to %s --amount 1000000 --invoice %s\n' "$TOKEN" "$GOAT_PAYEE" "$GOAT_SALT"
GOAT_TX="$("$BIN" devnet goat-pay --token "$TOKEN" --to "$GOAT_PAYEE" --amount 1000000 --invoice "$GOAT_SALT")"
echo "$GOAT_TX"
run devnet goat-mine 3
run goat sync
run goat prove --tx "$GOAT_TX" --out "$DEVNET/goat-proof.json"
run goat verify "$DEVNET/goat-proof.json" --token "$TOKEN" --payee "$GOAT_PAYEE" --amount 1000000 --invoice "$GOAT_SALT"
GOAT_BLOCK="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["block_number"])' "$DEVNET/goat-proof.json")"

step "Settling without the committee's signatures is refused, with the reason"
if run metis settle "$DEVNET/goat-proof.json" --invoice "$DEVNET/goat-invoice.json"; then echo "unattested block accepted!" >&2; exit 1; fi

step "The committee (3 of 5 devnet keys) signs the finalized GOAT block; settle with the signatures inline"
run metis attest-goat --block "$GOAT_BLOCK" --devnet-committee --sign-only
GMRELAY_METIS_DEVNET_ATTESTERS=true run metis settle "$DEVNET/goat-proof.json" --invoice "$DEVNET/goat-invoice.json"
run metis invoice show --id "$GOAT_INVOICE"

step "Settling twice is refused by the contract (AlreadySettled, decoded)"
if GMRELAY_METIS_DEVNET_ATTESTERS=true run metis settle "$DEVNET/goat-proof.json" --invoice "$DEVNET/goat-invoice.json" --skip-checks; then echo "double settlement accepted!" >&2; exit 1; fi

step "Done"
echo "Both invoices are settled on the Metis devnet."
echo "The devnets are stopped on exit; their files stay in .devnet/ (make clean-devnet)."
