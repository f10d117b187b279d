#!/usr/bin/env bash
# Builds bitcoind from the Bitcoin Core source shipped in the crates.io crate
# libbitcoinkernel-sys (folder bitcoin/) and caches the binary outside the
# repository, keyed by the crate version. Prints the path of the binary.
#
# Honours BITCOIND_EXE (an existing binary: nothing is built) and
# GMRELAY_CACHE (default ~/.cache/gmrelay).
set -euo pipefail

KERNEL_VERSION="0.4.1"
CACHE="${GMRELAY_CACHE:-$HOME/.cache/gmrelay}"
OUT="$CACHE/bitcoind-kernel-$KERNEL_VERSION"
EXE="$OUT/bitcoind"

if [[ -n "${BITCOIND_EXE:-}" ]]; then
  [[ -x "$BITCOIND_EXE" ]] || { echo "BITCOIND_EXE=$BITCOIND_EXE is not an executable" >&2; exit 1; }
  echo "$BITCOIND_EXE"
  exit 0
fi
if [[ -x "$EXE" ]]; then
  echo "$EXE"
  exit 0
fi

echo "building bitcoind (Bitcoin Core from libbitcoinkernel-sys $KERNEL_VERSION); about 13 minutes on 2 cores" >&2
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
cargo fetch --quiet --manifest-path "$WORK/fetch/Cargo.toml" >&2
SRC="$(cargo metadata --format-version 1 --manifest-path "$WORK/fetch/Cargo.toml" \
  | python3 -c 'import json,sys; m=json.load(sys.stdin); print([p for p in m["packages"] if p["name"]=="libbitcoinkernel-sys"][0]["manifest_path"])')"
SRC="$(dirname "$SRC")/bitcoin"
[[ -f "$SRC/CMakeLists.txt" ]] || { echo "Bitcoin Core source not found at $SRC" >&2; exit 1; }

cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release \
  -DENABLE_WALLET=OFF -DWITH_EMBEDDED_ASMAP=OFF -DBUILD_TESTS=OFF -DBUILD_BENCH=OFF \
  -DENABLE_IPC=OFF -DWITH_ZMQ=OFF -DBUILD_GUI=OFF -DBUILD_CLI=OFF -DBUILD_TX=OFF \
  -DBUILD_UTIL=OFF -DBUILD_WALLET_TOOL=OFF -DBUILD_KERNEL_LIB=OFF -DBUILD_FUZZ_BINARY=OFF >&2
cmake --build "$WORK/build" --target bitcoind -j"$(nproc)" >&2
mkdir -p "$OUT"
cp "$WORK/build/bin/bitcoind" "$OUT/bitcoind.tmp"
strip "$OUT/bitcoind.tmp" || true
mv "$OUT/bitcoind.tmp" "$EXE"
rm -rf "$WORK"
echo "$EXE"
