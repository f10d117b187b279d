#!/usr/bin/env bash
# The gmrelay demo: a regtest devnet, and a Bitcoin payment taken from
# invoice to verified proof through the gmrelay commands an operator uses.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${CARGO_TARGET_DIR:-$HOME/.cache/gmrelay/target}/release/gmrelay"
DEVNET="$PWD/.devnet"
export GMRELAY_DATA_DIR="$DEVNET/gmrelay"
export GMRELAY_LOG_LEVEL="${GMRELAY_LOG_LEVEL:-warn}"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ gmrelay %s\n' "$*"; "$BIN" "$@"; }

# A fresh devnet each time; stop the node whatever happens.
if [[ -f "$GMRELAY_DATA_DIR/bitcoind.pid" ]]; then "$BIN" devnet stop >/dev/null 2>&1 || true; fi
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

step "A merchant's invoice: 0.0005 BTC to its address, invoice id in OP_RETURN"
PAYEE="bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
INVOICE="$(printf 'x402-demo-invoice-%s' "$(date +%s)" | sha256sum | cut -c1-64)"
echo "payee   $PAYEE"
echo "invoice $INVOICE"

step "The agent pays: a P2WPKH transaction built and signed in Rust, broadcast to bitcoind"
printf '$ gmrelay devnet pay --to %s --amount 50000 --invoice %s\n' "$PAYEE" "$INVOICE"
TXID="$("$BIN" devnet pay --to "$PAYEE" --amount 50000 --invoice "$INVOICE")"
echo "$TXID"

step "Six confirmations, then sync"
run devnet mine 6
run headers sync

step "Prove the payment (Merkle branch + coinbase branch + header)"
run btc prove --txid "$TXID" --out "$DEVNET/btc-proof.json"

step "Verify it against gmrelay's own header chain, and match the invoice"
run btc verify "$DEVNET/btc-proof.json" --min-confirmations 6 \
  --pay-to "$PAYEE" --amount 50000 --invoice "$INVOICE"

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
  --pay-to "$PAYEE" --amount 50000 --invoice "$INVOICE"

step "Done"
echo "The devnet is stopped on exit; its files stay in .devnet/ (make clean-devnet)."
