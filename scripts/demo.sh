#!/usr/bin/env bash
# The gmrelay demo: a whole devnet (`gmrelay devnet up`), the relayer daemon
# (`gmrelay run`) in the background, a merchant's invoices signed off-chain
# (free until paid) naming its AccessPass on Metis, and an agent paying one
# on each rail: Bitcoin (an output plus an OP_RETURN with the invoice's ref)
# and GOAT (an EIP-3009 stablecoin transfer whose nonce is the ref). The
# daemon finds each payment, waits for its depth, relays the Bitcoin headers
# and settles each in one transaction; GOAT runs its own consensus (three
# CometBFT validators with secp256k1 keys) and its block is made final on
# Metis by GoatLightClient from their commit, with no committee; the
# demo shows each invoice settled, how long it took, its gas, and the
# service unlocked on Metis. Then x402: an agent (`gmrelay x402 pay`) buys a
# paid resource (`gmrelay x402 serve-example`) on each rail through the
# relayer's facilitator, with the messages on the wire decoded and the time
# from the first request to the 200. Everything is stopped at the end.
# `scripts/demo-manual.sh` takes the same path through the manual commands.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${CARGO_TARGET_DIR:-$HOME/.cache/gmrelay/target}/release/gmrelay"
DEVNET="$PWD/.devnet"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ gmrelay %s\n' "$*"; "$BIN" "$@"; }
ms() { date +%s%3N; }

# A fresh devnet each time; stop everything whatever happens.
if [[ -f "$DEVNET/devnet.json" ]]; then "$BIN" devnet down --dir "$DEVNET" >/dev/null 2>&1 || true; fi
rm -rf "$DEVNET"
RELAYER_PID=""
EXAMPLE_PID=""
cleanup() {
  [[ -n "$EXAMPLE_PID" ]] && kill -TERM "$EXAMPLE_PID" 2>/dev/null || true
  [[ -n "$RELAYER_PID" ]] && kill -TERM "$RELAYER_PID" 2>/dev/null && wait "$RELAYER_PID" 2>/dev/null || true
  "$BIN" devnet down --dir "$DEVNET" >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "A devnet: regtest bitcoind, GOAT (anvil 2345 + 3 CometBFT validators), Metis anvil (1088, Shanghai), contracts deployed"
run devnet up --dir "$DEVNET" --goat-consensus
CONFIG="$DEVNET/gmrelay.toml"
HTTP="$(sed -n 's/^http = "\(.*\)"/\1/p' "$CONFIG")"

step "The relayer daemon, in the background (log: .devnet/relayer.log)"
printf '$ gmrelay run --config %s &\n' "$CONFIG"
GMRELAY_LOG_LEVEL=info "$BIN" run --config "$CONFIG" >"$DEVNET/relayer.out" 2>"$DEVNET/relayer.log" &
RELAYER_PID=$!
for _ in $(seq 1 100); do
  curl -sf "http://$HTTP/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -s "http://$HTTP/readyz"

step "A merchant's invoices: terms signed off-chain (EIP-712, no transaction), handed to the relayer"
run devnet access --dir "$DEVNET"
BTC_INVOICE="$(run devnet invoice --dir "$DEVNET" --rail btc | tail -1)"
echo "bitcoin invoice $BTC_INVOICE (50,000 sat)"
GOAT_INVOICE="$(run devnet invoice --dir "$DEVNET" --rail goat | tail -1)"
echo "GOAT invoice    $GOAT_INVOICE (2.5 USDC)"

step "The agent pays on Bitcoin, and six blocks confirm it"
run devnet pay-btc --dir "$DEVNET" --invoice "$BTC_INVOICE"
run devnet mine-btc --dir "$DEVNET" 6
BTC_DEEP=$(ms)

step "The agent pays on GOAT (EIP-3009 transferWithAuthorization, nonce = the invoice's ref)"
run devnet pay-goat --dir "$DEVNET" --invoice "$GOAT_INVOICE"
GOAT_PAID=$(ms)

step "The daemon settles both on Metis"
BTC_DONE=""; GOAT_DONE=""
is_settled() {
  "$PWD/tools/node_modules/.bin/cast" call --rpc-url "$(python3 -c 'import json;print(json.load(open(".devnet/devnet.json"))["metis_rpc_url"])')" \
    "$(python3 -c 'import json;print(json.load(open(".devnet/devnet.json"))["payment_settlement"])')" \
    'isSettled(bytes32)(bool)' "$1"
}
for _ in $(seq 1 600); do
  [[ -z "$BTC_DONE" && "$(is_settled "$BTC_INVOICE")" == "true" ]] && BTC_DONE=$(ms)
  [[ -z "$GOAT_DONE" && "$(is_settled "$GOAT_INVOICE")" == "true" ]] && GOAT_DONE=$(ms)
  [[ -n "$BTC_DONE" && -n "$GOAT_DONE" ]] && break
  sleep 0.2
done
if [[ -z "$BTC_DONE" || -z "$GOAT_DONE" ]]; then
  echo "not settled within 2 minutes; the relayer's log:" >&2
  tail -50 "$DEVNET/relayer.log" >&2
  exit 1
fi
secs() { python3 -c "print(f'{($1 - $2) / 1000:.1f}')"; }
echo "bitcoin invoice settled $(secs "$BTC_DONE" "$BTC_DEEP") s after its sixth confirmation"
echo "GOAT invoice settled    $(secs "$GOAT_DONE" "$GOAT_PAID") s after the payment (a verified CometBFT commit makes it final; GoatLightClient checks the commit, then one settlement)"
for id in "$BTC_INVOICE" "$GOAT_INVOICE"; do
  curl -s "http://$HTTP/invoices/$id" >"$DEVNET/invoice.json"
  python3 - "$DEVNET/invoice.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['invoice']['terms']['rail']:4} settlement {r['settled_tx']}: {r['detail']}")
PY
done

step "The service unlocked on Metis: the merchant's AccessPass credits the agent (10 calls per invoice)"
run devnet access --dir "$DEVNET"

step "What the daemon reports (/status)"
curl -s "http://$HTTP/status" >"$DEVNET/status.json"
python3 - "$DEVNET/status.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for name, c in s["chains"].items():
    print(f"{name:8} tip {c.get('tip')} (node {c.get('node_height')}, lag {c.get('lag')})")
t = s["goat_trust"]
c = t.get("consensus") or {}
print(f"goat trust: {t['mode']} (CometBFT {c.get('chain_id')} verified to height {c.get('height')}, {c.get('validators')} validators)")
print("invoices", {k: v for k, v in s["invoices"]["by_stage"].items() if v})
print("metis transactions", {k: v for k, v in s["outbox"]["by_state"].items() if v})
PY

step "x402 across chains: a paid resource (gmrelay x402 serve-example) in front of the relayer's facilitator"
printf '$ gmrelay x402 serve-example --config %s &\n' "$CONFIG"
GMRELAY_LOG_LEVEL=info "$BIN" x402 serve-example --config "$CONFIG" >"$DEVNET/example.out" 2>"$DEVNET/example.log" &
EXAMPLE_PID=$!
RESOURCE=""
for _ in $(seq 1 100); do
  RESOURCE="$(sed -n 's/^paid resource \(http[^ ]*\).*/\1/p' "$DEVNET/example.out")"
  [[ -n "$RESOURCE" ]] && break
  sleep 0.2
done
[[ -n "$RESOURCE" ]] || { echo "serve-example did not start:" >&2; cat "$DEVNET/example.log" >&2; exit 1; }
echo "paid resource $RESOURCE"

step "An agent buys it on GOAT: 402, an EIP-3009 signature, 200 once Metis holds the invoice settled"
run x402 pay "$RESOURCE" --rail goat --config "$CONFIG" --show-wire

step "The agent buys it on Bitcoin: 402, a signed transaction, 202 while it confirms (the devnet mines on demand), 200"
run x402 pay "$RESOURCE" --rail btc --config "$CONFIG" --mine-regtest --show-wire
kill -TERM "$EXAMPLE_PID" 2>/dev/null || true

step "Done"
echo "The invoices are settled on the Metis devnet, the agent's access is unlocked and it bought the x402 resource on both rails; the devnet and the daemons are stopped on exit."
