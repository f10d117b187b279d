// SPDX-License-Identifier: MIT OR Apache-2.0
// Starts a throw-away anvil on a free loopback port and talks JSON-RPC to it.
'use strict';

const { spawn, execFileSync } = require('child_process');
const net = require('net');
const path = require('path');
const fs = require('fs');
const abi = require('./abi');

const BIN = path.join(__dirname, '..', '..', '..', 'tools', 'node_modules', '.bin');
// ANVIL_EXE overrides the pinned anvil from tools/node_modules.
const ANVIL = process.env.ANVIL_EXE || path.join(BIN, 'anvil');
const ARTIFACTS = path.join(__dirname, '..', '..', 'artifacts');

// Deterministic throw-away signing keys (never funded, never used outside tests).
const KEYS = Array.from({ length: 8 }, (_, i) => abi.keccakText(`gmrelay contracts test key ${i}`));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

class Chain {
  static async start({ chainId = 1088, hardfork = 'shanghai', extra = [] } = {}) {
    const port = await freePort();
    const args = ['--host', '127.0.0.1', '--port', String(port), '--chain-id', String(chainId),
      '--hardfork', hardfork, '--gas-limit', '60000000', ...extra];
    if (process.env.GAS_PROFILE) args.push('--steps-tracing');
    const proc = spawn(ANVIL, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    proc.stdout.on('data', (d) => { log += d; });
    proc.stderr.on('data', (d) => { log += d; });
    const chain = new Chain(`http://127.0.0.1:${port}`, proc);
    for (let i = 0; i < 100; i++) {
      try {
        await chain.rpc('eth_chainId', []);
        chain.accounts = await chain.rpc('eth_accounts', []);
        return chain;
      } catch (e) {
        await sleep(100);
      }
    }
    proc.kill('SIGTERM');
    throw new Error('anvil did not start:\n' + log);
  }

  constructor(url, proc) {
    this.url = url;
    this.proc = proc;
    this.id = 0;
  }

  stop() {
    if (this.proc && this.proc.exitCode === null) this.proc.kill('SIGTERM');
  }

  async rpc(method, params) {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: ++this.id, method, params }),
    });
    const body = await res.json();
    if (body.error) {
      const err = new Error(`${method}: ${body.error.message}`);
      err.data = body.error.data;
      throw err;
    }
    return body.result;
  }

  async deploy(name, types = [], values = [], from = this.accounts[0]) {
    const art = JSON.parse(fs.readFileSync(path.join(ARTIFACTS, name + '.json'), 'utf8'));
    const data = art.bytecode + abi.encode(types, values).slice(2);
    const receipt = await this.sendRaw({ from, data });
    return receipt.contractAddress;
  }

  /** Revert data of a deployment that must fail (null if it succeeds). */
  async revertDeploy(name, types = [], values = [], from = this.accounts[0]) {
    const art = JSON.parse(fs.readFileSync(path.join(ARTIFACTS, name + '.json'), 'utf8'));
    const data = art.bytecode + abi.encode(types, values).slice(2);
    try {
      await this.rpc('eth_call', [{ from, data }, 'latest']);
      return null;
    } catch (e) {
      return typeof e.data === 'string' ? e.data : (e.data && e.data.data) || String(e.message);
    }
  }

  async sendRaw(tx) {
    const hash = await this.rpc('eth_sendTransaction', [{ gas: '0x1c9c380', ...tx }]);
    let receipt = null;
    for (let i = 0; i < 200 && !receipt; i++) {
      receipt = await this.rpc('eth_getTransactionReceipt', [hash]);
      if (!receipt) await sleep(i < 10 ? 5 : 50);
    }
    if (!receipt) throw new Error('no receipt (automine off?)');
    if (receipt.status !== '0x1') {
      // Replay as a call to get the revert data.
      let data = '';
      try {
        await this.rpc('eth_call', [{ ...tx, gas: undefined }, 'latest']);
      } catch (e) {
        data = e.data;
      }
      const err = new Error(`transaction reverted: ${data}`);
      err.data = data;
      err.receipt = receipt;
      throw err;
    }
    return receipt;
  }

  async send(to, signature, values, from = this.accounts[0]) {
    return this.sendRaw({ from, to, data: abi.calldata(signature, values) });
  }

  async call(to, signature, values = [], from = this.accounts[0]) {
    return this.rpc('eth_call', [{ from, to, data: abi.calldata(signature, values) }, 'latest']);
  }

  /** Revert data of a call that must fail (null if it succeeds). */
  async revertData(to, signature, values, from = this.accounts[0]) {
    try {
      await this.rpc('eth_call', [{ from, to, data: abi.calldata(signature, values) }, 'latest']);
      return null;
    } catch (e) {
      return typeof e.data === 'string' ? e.data : (e.data && e.data.data) || String(e.message);
    }
  }
}

/** Signs a 32-byte digest with a private key (raw, no prefix); returns {r, s, v, sig}. */
function signDigest(digest, key) {
  const out = execFileSync(path.join(BIN, 'cast'), ['wallet', 'sign', '--no-hash', '--private-key', key, digest])
    .toString().trim();
  const h = abi.strip0x(out);
  return { r: '0x' + h.slice(0, 64), s: '0x' + h.slice(64, 128), v: parseInt(h.slice(128, 130), 16), sig: '0x' + h };
}

function addressOf(key) {
  return execFileSync(path.join(BIN, 'cast'), ['wallet', 'address', '--private-key', key]).toString().trim();
}

module.exports = { Chain, signDigest, addressOf, KEYS, sleep };
