#!/usr/bin/env bash
# Builds bitcoind from the Bitcoin Core source shipped in the crates.io crate
# libbitcoinkernel-sys (folder bitcoin/) and caches the binary outside the
# repository, keyed by the crate version. Prints the path of the binary on
# stdout; progress goes to stderr. Called by scripts/setup.sh, which honours a
# user's BITCOIND_EXE before it gets here.
#
# GMRELAY_CACHE: the cache (default ~/.cache/gmrelay).
set -euo pipefail

KERNEL_VERSION="0.4.1"
CACHE="${GMRELAY_CACHE:-$HOME/.cache/gmrelay}"
OUT="$CACHE/bitcoind-kernel-$KERNEL_VERSION"
EXE="$OUT/bitcoind"

if [[ -x "$EXE" ]]; then
  echo "$EXE"
  exit 0
fi

start=$SECONDS
say() { printf 'bitcoind build [%dm%02ds]: %s\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$*" >&2; }
say "building bitcoind once from Bitcoin Core's source (crates.io libbitcoinkernel-sys $KERNEL_VERSION) into $OUT; 13-17 minutes on 2 cores"
WORK="$CACHE/bitcoind-build-$KERNEL_VERSION"
mkdir -p "$WORK/fetch/src"
# A throwaway manifest: cargo fetches the crate's source, nothing is compiled.
cat > "$WORK/fetch/Cargo.toml" <<TOML
[package]
name = "fetch-bitcoin-core"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
libbitcoinkernel-sys = "=$KERNEL_VERSION"
[workspace]
TOML
echo 'fn main() {}' > "$WORK/fetch/src/main.rs"
say "fetching the crate's source with cargo"
cargo fetch --quiet --manifest-path "$WORK/fetch/Cargo.toml" >&2
SRC="$(cargo metadata --format-version 1 --manifest-path "$WORK/fetch/Cargo.toml" \
  | python3 -c 'import json,sys; m=json.load(sys.stdin); print([p for p in m["packages"] if p["name"]=="libbitcoinkernel-sys"][0]["manifest_path"])')"
SRC="$(dirname "$SRC")/bitcoin"
[[ -f "$SRC/CMakeLists.txt" ]] || { echo "bitcoind build: Bitcoin Core source not found at $SRC" >&2; exit 1; }

say "configuring with cmake (about a minute); full log: $WORK/build.log"
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release \
  -DENABLE_WALLET=OFF -DWITH_EMBEDDED_ASMAP=OFF -DBUILD_TESTS=OFF -DBUILD_BENCH=OFF \
  -DENABLE_IPC=OFF -DWITH_ZMQ=OFF -DBUILD_GUI=OFF -DBUILD_CLI=OFF -DBUILD_TX=OFF \
  -DBUILD_UTIL=OFF -DBUILD_WALLET_TOOL=OFF -DBUILD_KERNEL_LIB=OFF -DBUILD_FUZZ_BINARY=OFF \
  >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; say "cmake configure failed (log above)"; exit 1; }

say "compiling (cmake's percentage every 5%)"
# cmake prints "[ 42%] Building CXX object ..."; show each new multiple of 5.
set +e
cmake --build "$WORK/build" --target bitcoind -j"$(nproc)" 2>&1 | tee -a "$WORK/build.log" | {
  last=-5
  while IFS= read -r line; do
    if [[ "$line" =~ ^\[\ *([0-9]+)%\] ]]; then
      pct=${BASH_REMATCH[1]}
      if ((pct >= last + 5)); then last=$((pct - pct % 5)); say "${pct}%"; fi
    fi
  done
}
status=${PIPESTATUS[0]}
set -e
if ((status != 0)); then
  grep -E 'error|Error' "$WORK/build.log" | tail -20 >&2
  say "compilation failed (exit $status); full log: $WORK/build.log"
  exit 1
fi
mkdir -p "$OUT"
cp "$WORK/build/bin/bitcoind" "$OUT/bitcoind.tmp"
strip "$OUT/bitcoind.tmp" || true
mv "$OUT/bitcoind.tmp" "$EXE"
rm -rf "$WORK"
say "done: $EXE"
echo "$EXE"
