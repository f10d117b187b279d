#!/usr/bin/env bash
# Installs what gmrelay's build, tests and demo need, skipping what is there.
# Idempotent: a second run takes seconds.
#   - Debian packages: cmake, Boost and libevent headers (bitcoind), libclang (librocksdb-sys)
#   - bitcoind, built from Bitcoin Core's source and cached in $GMRELAY_CACHE
#   - cometbft v0.38.25 (the devnet's GOAT consensus), `go install`ed from the
#     Go module proxy and cached in $GMRELAY_CACHE
#   - anvil, cast, solc-js and the stock x402 SDK (interop tests) at pinned
#     versions in tools/node_modules (git-ignored)
#
#   scripts/setup.sh          install what is missing
#   scripts/setup.sh --plan   resolve every tool exactly as the install would and
#                             print one line per tool, installing nothing:
#                               present: <tool> <path>
#                               will build: <tool> <what> -> <path>
#                               will install: <tool> <what> -> <path>
#
# Overrides, honoured only when set by the user: BITCOIND_EXE, COMETBFT_EXE,
# ANVIL_EXE, CAST_EXE (an existing executable: nothing is built or installed for it; a
# path that is not executable is an error naming the variable).
set -euo pipefail
cd "$(dirname "$0")/.."

PLAN=0
case "${1:-}" in
  --plan) PLAN=1 ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--plan]" >&2; exit 2 ;;
esac

CACHE="${GMRELAY_CACHE:-$HOME/.cache/gmrelay}"
KERNEL_VERSION="0.4.1"
COMETBFT_VERSION="v0.38.25"
TOOLS="$PWD/tools/node_modules"

die() { echo "setup: $*" >&2; exit 1; }

# A user override must name an executable; unset means "ours".
check_override() { # VAR
  local var="$1" val="${!1:-}"
  [[ -z "$val" ]] && return 1
  [[ -f "$val" && -x "$val" ]] || die "$var=$val is not an executable file (unset $var to let setup build or install it)"
  return 0
}

# --- Debian packages ---------------------------------------------------------
need_pkgs=()
for pkg in cmake libboost-dev libevent-dev pkg-config libclang-dev clang; do
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    ((PLAN)) && echo "present: $pkg (Debian package)"
  else
    need_pkgs+=("$pkg")
    ((PLAN)) && echo "will install: $pkg apt-get install $pkg -> system"
  fi
done
for tool in cargo node npm python3; do
  path="$(command -v "$tool" || true)"
  [[ -n "$path" ]] || die "$tool is not on the PATH: install it first (Rust by rustup, Node.js 20 with npm, Python 3)"
  ((PLAN)) && echo "present: $tool $path"
done
if ((${#need_pkgs[@]})) && ((!PLAN)); then
  echo "setup: installing Debian packages: ${need_pkgs[*]} (about a minute)"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# --- bitcoind ----------------------------------------------------------------
BITCOIND_CACHED="$CACHE/bitcoind-kernel-$KERNEL_VERSION/bitcoind"
if check_override BITCOIND_EXE; then
  if ((PLAN)); then echo "present: bitcoind $BITCOIND_EXE (BITCOIND_EXE)"; else echo "setup: bitcoind $BITCOIND_EXE (BITCOIND_EXE)"; fi
elif [[ -x "$BITCOIND_CACHED" ]]; then
  if ((PLAN)); then echo "present: bitcoind $BITCOIND_CACHED"; else echo "setup: bitcoind $BITCOIND_CACHED"; fi
elif ((PLAN)); then
  echo "will build: bitcoind Bitcoin Core from crates.io libbitcoinkernel-sys $KERNEL_VERSION -> $BITCOIND_CACHED"
else
  GMRELAY_CACHE="$CACHE" scripts/build-bitcoind.sh >/dev/null
  echo "setup: bitcoind $BITCOIND_CACHED"
fi

# --- cometbft (the devnet's GOAT consensus) ----------------------------------
COMETBFT_CACHED="$CACHE/cometbft-$COMETBFT_VERSION/cometbft"
COMETBFT_PKG="github.com/cometbft/cometbft/cmd/cometbft@$COMETBFT_VERSION"
if check_override COMETBFT_EXE; then
  if ((PLAN)); then echo "present: cometbft $COMETBFT_EXE (COMETBFT_EXE)"; else echo "setup: cometbft $COMETBFT_EXE (COMETBFT_EXE)"; fi
elif [[ -x "$COMETBFT_CACHED" ]]; then
  if ((PLAN)); then echo "present: cometbft $COMETBFT_CACHED"; else echo "setup: cometbft $COMETBFT_CACHED"; fi
elif ((PLAN)); then
  echo "will build: cometbft go install $COMETBFT_PKG -> $COMETBFT_CACHED"
else
  command -v go >/dev/null || die "go is not on the PATH: install Go 1.22 or newer (cometbft $COMETBFT_VERSION is built with go install), or set COMETBFT_EXE"
  echo "setup: building cometbft $COMETBFT_VERSION with go install (1-3 minutes on 2 cores)"
  tmp="$(mktemp -d "$CACHE/cometbft-build.XXXXXX" 2>/dev/null || { mkdir -p "$CACHE" && mktemp -d "$CACHE/cometbft-build.XXXXXX"; })"
  GOBIN="$tmp" GOFLAGS="${GOFLAGS:-} -buildvcs=false" go install "$COMETBFT_PKG" || { rm -rf "$tmp"; die "go install $COMETBFT_PKG failed"; }
  mkdir -p "$(dirname "$COMETBFT_CACHED")"
  mv "$tmp/cometbft" "$COMETBFT_CACHED"
  rm -rf "$tmp"
  echo "setup: cometbft $COMETBFT_CACHED ($("$COMETBFT_CACHED" version))"
fi

# --- npm tools (anvil, cast, solc-js, x402 SDK) ------------------------------------
npm_fresh=0
cmp -s tools/package.json "$TOOLS/.gmrelay-installed" 2>/dev/null && npm_fresh=1
pinned() { node -e 'const d=require("./tools/package.json").dependencies; console.log(d[process.argv[1]])' "$1"; }
for tool in anvil cast solc x402; do
  case "$tool" in
    anvil) var=ANVIL_EXE; pkg="@foundry-rs/anvil-linux-amd64"; path="$TOOLS/.bin/anvil" ;;
    cast) var=CAST_EXE; pkg="@foundry-rs/cast-linux-amd64"; path="$TOOLS/.bin/cast" ;;
    solc) var=""; pkg="solc"; path="$TOOLS/solc" ;;
    x402) var=""; pkg="@x402/fetch"; path="$TOOLS/@x402/fetch" ;; # with @x402/evm, @x402/express, express, viem
  esac
  if [[ -n "$var" ]] && check_override "$var"; then
    ((PLAN)) && echo "present: $tool ${!var} ($var)"
  elif ((npm_fresh)) && [[ -e "$path" ]]; then
    ((PLAN)) && echo "present: $tool $path"
  else
    npm_fresh=0
    ((PLAN)) && echo "will install: $tool npm $pkg@$(pinned "$pkg") -> $path"
  fi
done
if ((!PLAN)); then
  if ((!npm_fresh)); then
    echo "setup: installing pinned npm tools (anvil, cast, solc-js, the x402 SDK) into tools/node_modules (under a minute)"
    (cd tools && npm install --no-audit --no-fund --loglevel=error >/dev/null)
    cp tools/package.json "$TOOLS/.gmrelay-installed"
  fi
  echo "setup: anvil $("${ANVIL_EXE:-$TOOLS/.bin/anvil}" --version | head -1)"
  echo "setup: solc-js $(node -e 'console.log(require("./tools/node_modules/solc").version())')"
fi
