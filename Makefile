# gmrelay: `make help` lists the targets.
#
# One cargo profile (release) for build, tests, benchmarks and the demo; the
# target dir and the tool cache live in ~/.cache/gmrelay so fresh clones on
# the same machine reuse them.

SHELL := /bin/bash
export GMRELAY_CACHE ?= $(HOME)/.cache/gmrelay
export CARGO_TARGET_DIR ?= $(GMRELAY_CACHE)/target
CARGO ?= cargo
PROFILE := --release
BIN := $(CARGO_TARGET_DIR)/release/gmrelay
# BITCOIND_EXE, ANVIL_EXE and CAST_EXE are the user's overrides and are never
# given defaults here: unset, `make setup` builds bitcoind into the cache and
# installs anvil/cast into tools/node_modules, and gmrelay and the tests find
# them there.
# Printed before a cargo command whose release build has never run here.
FIRST_BUILD_NOTICE = @test -d $(CARGO_TARGET_DIR)/release/deps || echo "cargo: first build in $(CARGO_TARGET_DIR): gmrelay and its ~450 dependencies in release mode, 13-22 minutes on 2 cores; cargo names each crate as it compiles"

.PHONY: help setup setup-plan build test lint fmt bench gas demo contracts contracts-check contracts-test clean-devnet

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: ## Install what is missing: Debian packages, bitcoind (cached), anvil/cast/solc (pinned)
	@scripts/setup.sh

setup-plan: ## What `make setup` would build or install, one line per tool; installs nothing
	@scripts/setup.sh --plan

build: setup ## Build gmrelay (release profile)
	$(FIRST_BUILD_NOTICE)
	$(CARGO) build $(PROFILE) --locked

contracts: setup ## Recompile contracts/src/*.sol into contracts/artifacts (solc 0.8.23, shanghai)
	node contracts/build.js

contracts-check: setup ## Fail when a committed contract artifact is stale
	node contracts/build.js --check

contracts-test: setup ## Contract scenario tests on anvil (Metis 1088 and GOAT 2345), with gas figures
	node contracts/test/run.js

test: setup-plan setup contracts-check lint ## The set-up plan, contracts fresh, fmt, clippy, then every test (real bitcoind and anvil)
	node contracts/test/run.js
	$(FIRST_BUILD_NOTICE)
	$(CARGO) test $(PROFILE) --locked --all-targets -- --test-threads=2

lint: ## cargo fmt --check and clippy -D warnings
	$(CARGO) fmt --all -- --check
	$(FIRST_BUILD_NOTICE)
	$(CARGO) clippy $(PROFILE) --locked --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

bench: build ## Run the benchmarks recorded in BENCHMARKS.md
	$(BIN) bench headers --count 1000000
	$(BIN) bench sync --blocks 10000
	$(BIN) bench goat-proof --receipts 1000
	$(BIN) bench goat-sync --blocks 10000
	$(BIN) bench daemon --invoices 100
	$(BIN) bench daemon --invoices 20 --rail btc
	$(BIN) bench daemon --invoices 20 --rail goat
	$(BIN) bench daemon --invoices 20 --rail goat --goat-consensus
	$(BIN) bench x402-verify --requests 20000 --concurrency 16
	$(BIN) bench goat-consensus --blocks 2000 --validators 3
	$(BIN) bench goat-consensus --blocks 500 --validators 20

gas: build ## Whole-transaction gas of the Metis contracts (anvil 1088 + bitcoind + GOAT anvil), markdown table
	$(BIN) bench gas

demo: build ## A devnet and the relayer daemon: a BTC and a GOAT payment settled on Metis by `gmrelay run`
	@scripts/demo.sh

clean-devnet: ## Stop and delete the demo devnet
	-@$(BIN) devnet down --dir $(CURDIR)/.devnet 2>/dev/null
	-@GMRELAY_DATA_DIR=$(CURDIR)/.devnet/gmrelay $(BIN) devnet stop 2>/dev/null
	rm -rf .devnet
