// SPDX-License-Identifier: MIT OR Apache-2.0
// RLP, a Merkle-Patricia trie builder with proofs, and header/receipt encoders for tests.
'use strict';

const { keccakHex, strip0x } = require('./abi');

function hexBuf(h) {
  return Buffer.from(strip0x(h), 'hex');
}

/** Minimal big-endian bytes of a quantity ("0x0" -> empty). */
function quantity(q) {
  let v = BigInt(q);
  if (v === 0n) return Buffer.alloc(0);
  let h = v.toString(16);
  if (h.length % 2) h = '0' + h;
  return Buffer.from(h, 'hex');
}

function encodeLength(len, offset) {
  if (len < 56) return Buffer.from([offset + len]);
  let h = len.toString(16);
  if (h.length % 2) h = '0' + h;
  const lb = Buffer.from(h, 'hex');
  return Buffer.concat([Buffer.from([offset + 55 + lb.length]), lb]);
}

/** RLP: Buffer (string), Array (list) or {raw: Buffer} (already encoded item). */
function rlp(item) {
  if (item && item.raw) return item.raw;
  if (Array.isArray(item)) {
    const payload = Buffer.concat(item.map(rlp));
    return Buffer.concat([encodeLength(payload.length, 0xc0), payload]);
  }
  const b = Buffer.from(item);
  if (b.length === 1 && b[0] < 0x80) return b;
  return Buffer.concat([encodeLength(b.length, 0x80), b]);
}

function keccak(buf) {
  return hexBuf(keccakHex(buf));
}

function toNibbles(buf) {
  const out = [];
  for (const b of buf) out.push(b >> 4, b & 15);
  return out;
}

function hexPrefix(nibbles, leaf) {
  const odd = nibbles.length % 2;
  const flag = (leaf ? 2 : 0) + odd;
  const all = odd ? [flag, ...nibbles] : [flag, 0, ...nibbles];
  const out = Buffer.alloc(all.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = (all[2 * i] << 4) | all[2 * i + 1];
  return out;
}

/** Builds a trie node for entries [{nibbles, value}]; returns {encoded, children?}. */
function buildNode(entries) {
  if (entries.length === 1) {
    const e = entries[0];
    const encoded = rlp([hexPrefix(e.nibbles, true), e.value]);
    return { kind: 'leaf', encoded, path: e.nibbles, value: e.value };
  }
  // Longest common prefix.
  let prefix = 0;
  for (;;) {
    const n = entries[0].nibbles[prefix];
    if (n === undefined || !entries.every((e) => e.nibbles.length > prefix && e.nibbles[prefix] === n)) break;
    prefix++;
  }
  if (prefix > 0) {
    const child = buildNode(entries.map((e) => ({ nibbles: e.nibbles.slice(prefix), value: e.value })));
    const encoded = rlp([hexPrefix(entries[0].nibbles.slice(0, prefix), false), ref(child)]);
    return { kind: 'ext', encoded, path: entries[0].nibbles.slice(0, prefix), child };
  }
  const children = new Array(16).fill(null);
  let value = Buffer.alloc(0);
  for (let n = 0; n < 16; n++) {
    const group = entries.filter((e) => e.nibbles.length > 0 && e.nibbles[0] === n)
      .map((e) => ({ nibbles: e.nibbles.slice(1), value: e.value }));
    if (group.length) children[n] = buildNode(group);
  }
  const terminal = entries.find((e) => e.nibbles.length === 0);
  if (terminal) value = terminal.value;
  const encoded = rlp([...children.map((c) => (c ? ref(c) : Buffer.alloc(0))), value]);
  return { kind: 'branch', encoded, children, value };
}

/** Child reference: the hash for nodes of 32+ bytes, the node itself (inline) otherwise. */
function ref(node) {
  return node.encoded.length < 32 ? { raw: node.encoded } : keccak(node.encoded);
}

class Trie {
  /** entries: [[keyBuffer, valueBuffer]] */
  constructor(entries) {
    this.root = buildNode(entries.map(([k, v]) => ({ nibbles: toNibbles(k), value: v })));
  }

  rootHash() {
    return keccak(this.root.encoded);
  }

  /** Proof: hashed nodes on the path to `key` (root first), as Buffers. */
  proof(key) {
    const nibbles = toNibbles(key);
    const out = [];
    let node = this.root;
    let pos = 0;
    let first = true;
    while (node) {
      if (first || node.encoded.length >= 32) out.push(node.encoded);
      first = false;
      if (node.kind === 'leaf') break;
      if (node.kind === 'ext') {
        pos += node.path.length;
        node = node.child;
      } else {
        if (pos === nibbles.length) break;
        node = node.children[nibbles[pos++]];
      }
    }
    return out;
  }
}

/** RLP of a block header from an eth_getBlockByNumber JSON object. */
function encodeHeader(b) {
  const fields = [
    hexBuf(b.parentHash), hexBuf(b.sha3Uncles), hexBuf(b.miner), hexBuf(b.stateRoot), hexBuf(b.transactionsRoot),
    hexBuf(b.receiptsRoot), hexBuf(b.logsBloom), quantity(b.difficulty), quantity(b.number), quantity(b.gasLimit),
    quantity(b.gasUsed), quantity(b.timestamp), hexBuf(b.extraData), hexBuf(b.mixHash), hexBuf(b.nonce),
  ];
  if (b.baseFeePerGas !== undefined) fields.push(quantity(b.baseFeePerGas));
  if (b.withdrawalsRoot !== undefined) fields.push(hexBuf(b.withdrawalsRoot));
  if (b.blobGasUsed !== undefined) fields.push(quantity(b.blobGasUsed));
  if (b.excessBlobGas !== undefined) fields.push(quantity(b.excessBlobGas));
  if (b.parentBeaconBlockRoot !== undefined) fields.push(hexBuf(b.parentBeaconBlockRoot));
  if (b.requestsHash !== undefined) fields.push(hexBuf(b.requestsHash));
  return rlp(fields);
}

/** Consensus encoding of a receipt from eth_getTransactionReceipt JSON. */
function encodeReceipt(r) {
  const body = rlp([
    quantity(r.status),
    quantity(r.cumulativeGasUsed),
    hexBuf(r.logsBloom),
    r.logs.map((l) => [hexBuf(l.address), l.topics.map(hexBuf), hexBuf(l.data)]),
  ]);
  const type = Number(r.type || '0x0');
  return type === 0 ? body : Buffer.concat([Buffer.from([type]), body]);
}

module.exports = { rlp, quantity, hexBuf, keccak, Trie, encodeHeader, encodeReceipt, hexPrefix };
