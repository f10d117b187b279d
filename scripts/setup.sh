#!/usr/bin/env bash
# Installs what gmrelay's build, tests and demo need, skipping what is there.
# Idempotent: a second run takes seconds.
#   - Debian packages: cmake, Boost and libevent headers (bitcoind), libclang (librocksdb-sys)
#   - bitcoind, built from Bitcoin Core's source and cached in ~/.cache/gmrelay
#   - anvil, cast and solc-js at pinned versions in tools/node_modules (git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
for pkg in cmake libboost-dev libevent-dev pkg-config libclang-dev clang; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$pkg")
done
if ((${#need_pkgs[@]})); then
  echo "setup: installing Debian packages: ${need_pkgs[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

exe="$(scripts/build-bitcoind.sh)"
echo "setup: bitcoind $exe"

if ! cmp -s tools/package.json tools/node_modules/.gmrelay-installed 2>/dev/null; then
  echo "setup: installing pinned npm tools (anvil, cast, solc-js)"
  (cd tools && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  cp tools/package.json tools/node_modules/.gmrelay-installed
fi
echo "setup: anvil $(tools/node_modules/.bin/anvil --version | head -1)"
echo "setup: solc-js $(node -e 'console.log(require("./tools/node_modules/solc").version())')"
