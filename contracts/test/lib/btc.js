// SPDX-License-Identifier: MIT OR Apache-2.0
// Bitcoin reference code for tests: headers, mining, compact targets, Core's retarget,
// Merkle trees and legacy transaction serialization.
'use strict';

const crypto = require('crypto');

const REGTEST_POW_LIMIT = (1n << 255n) - 1n; // Bitcoin Core regtest consensus.powLimit (7fff…ff)
const MAINNET_POW_LIMIT = (1n << 224n) - 1n;
const MAX256 = (1n << 256n) - 1n;

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest();
}

function dsha256(buf) {
  return sha256(sha256(buf));
}

/** Digest bytes read as a little-endian number. */
function leNumber(digest) {
  return BigInt('0x' + Buffer.from(digest).reverse().toString('hex'));
}

/** arith_uint256::SetCompact -> {target, negative, overflow}. */
function decodeCompact(bits) {
  const size = bits >>> 24;
  const word = BigInt(bits & 0x007fffff);
  let target = size <= 3 ? word >> BigInt(8 * (3 - size)) : (word << BigInt(8 * (size - 3))) & MAX256;
  const negative = word !== 0n && (bits & 0x00800000) !== 0;
  const overflow = word !== 0n && (size > 34 || (word > 0xffn && size > 33) || (word > 0xffffn && size > 32));
  return { target, negative, overflow };
}

/** arith_uint256::GetCompact. */
function encodeCompact(value) {
  let size = value === 0n ? 0 : Math.ceil(value.toString(2).length / 8);
  let compact = size <= 3 ? Number(value << BigInt(8 * (3 - size))) : Number(value >> BigInt(8 * (size - 3)));
  if (compact & 0x00800000) {
    compact >>= 8;
    size++;
  }
  return (compact | (size << 24)) >>> 0;
}

/** Bitcoin Core CalculateNextWorkRequired (wrapping 256-bit multiply like arith_uint256). */
function retarget(parentBits, periodStart, parentTime, powLimit) {
  let span = BigInt(parentTime) - BigInt(periodStart);
  if (span < 302400n) span = 302400n;
  if (span > 4838400n) span = 4838400n;
  let t = (decodeCompact(parentBits).target * span) & MAX256;
  t /= 1209600n;
  if (t > powLimit) t = powLimit;
  return encodeCompact(t);
}

function work(target) {
  return (1n << 256n) / (target + 1n);
}

function u32le(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function u64le(n) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

function headerBytes({ version = 0x20000000, prev, merkleRoot, time, bits, nonce = 0 }) {
  return Buffer.concat([u32le(version), prev, merkleRoot, u32le(time), u32le(bits), u32le(nonce)]);
}

/** Finds a nonce so that the header meets its own bits; returns {header, hash}. */
function mine(fields) {
  const { target } = decodeCompact(fields.bits);
  const h = headerBytes({ ...fields, nonce: 0 });
  for (let nonce = fields.nonce || 0; ; nonce++) {
    h.writeUInt32LE(nonce >>> 0, 76);
    const hash = dsha256(h);
    if (leNumber(hash) <= target) return { header: Buffer.from(h), hash };
    if (nonce >= 0xffffffff) {
      // Roll the timestamp when the nonce space is exhausted.
      h.writeUInt32LE(h.readUInt32LE(68) + 1, 68);
      nonce = -1;
    }
  }
}

/** Finds a nonce whose hash does NOT meet the bits (for negative tests). */
function mineBad(fields) {
  const { target } = decodeCompact(fields.bits);
  const h = headerBytes({ ...fields, nonce: 0 });
  for (let nonce = 0; ; nonce++) {
    h.writeUInt32LE(nonce, 76);
    const hash = dsha256(h);
    if (leNumber(hash) > target) return { header: Buffer.from(h), hash };
  }
}

/** Mines `count` headers on top of {hash, time}; returns [{header, hash, time}]. */
function mineChain(parent, count, bits, { spacing = 600, salt = 0 } = {}) {
  const out = [];
  let prev = parent.hash;
  let time = parent.time;
  for (let i = 0; i < count; i++) {
    time += spacing;
    const merkleRoot = sha256(Buffer.from(`root ${salt} ${i} ${prev.toString('hex')}`));
    const m = mine({ prev, merkleRoot, time, bits });
    out.push({ ...m, time, bits });
    prev = m.hash;
  }
  return out;
}

/** Merkle root of txids (Buffers, internal order), Bitcoin style (duplicate odd last). */
function merkleLevels(txids) {
  const levels = [txids.slice()];
  while (levels[levels.length - 1].length > 1) {
    const cur = levels[levels.length - 1];
    const next = [];
    for (let i = 0; i < cur.length; i += 2) {
      const a = cur[i];
      const b = i + 1 < cur.length ? cur[i + 1] : cur[i];
      next.push(dsha256(Buffer.concat([a, b])));
    }
    levels.push(next);
  }
  return levels;
}

function merkleRoot(txids) {
  const levels = merkleLevels(txids);
  return levels[levels.length - 1][0];
}

/** Branch (siblings leaf-first) for `index`; concatenated Buffer. */
function merkleBranch(txids, index) {
  const levels = merkleLevels(txids);
  const out = [];
  let i = index;
  for (let l = 0; l < levels.length - 1; l++) {
    const level = levels[l];
    const sib = i ^ 1;
    out.push(sib < level.length ? level[sib] : level[i]);
    i >>= 1;
  }
  return Buffer.concat(out);
}

function varint(n) {
  if (n < 0xfd) return Buffer.from([n]);
  if (n <= 0xffff) {
    const b = Buffer.alloc(3);
    b[0] = 0xfd;
    b.writeUInt16LE(n, 1);
    return b;
  }
  const b = Buffer.alloc(5);
  b[0] = 0xfe;
  b.writeUInt32LE(n, 1);
  return b;
}

/** Legacy serialization of {version, inputs:[{txid, vout, script, sequence}], outputs:[{value, script}], locktime}. */
function serializeTx({ version = 2, inputs, outputs, locktime = 0 }) {
  const parts = [u32le(version), varint(inputs.length)];
  for (const i of inputs) {
    parts.push(i.txid, u32le(i.vout), varint(i.script.length), i.script, u32le(i.sequence ?? 0xfffffffd));
  }
  parts.push(varint(outputs.length));
  for (const o of outputs) parts.push(u64le(o.value), varint(o.script.length), o.script);
  parts.push(u32le(locktime));
  return Buffer.concat(parts);
}

function coinbaseTx(height, extra = '') {
  const script = Buffer.concat([Buffer.from([0x03]), Buffer.from([height & 0xff, (height >> 8) & 0xff, (height >> 16) & 0xff]),
    Buffer.from(extra)]);
  return serializeTx({
    version: 1,
    inputs: [{ txid: Buffer.alloc(32), vout: 0xffffffff, script, sequence: 0xffffffff }],
    outputs: [{ value: 312500000n, script: Buffer.from('0014' + '11'.repeat(20), 'hex') }],
  });
}

/** The 48-byte compact record of an 80-byte header (the header without its prevHash). */
function compactHeader(header) {
  return Buffer.concat([header.subarray(0, 4), header.subarray(36, 80)]);
}

/** The 80-byte header back from a compact record and its parent's hash. */
function expandHeader(record, prev) {
  return Buffer.concat([record.subarray(0, 4), prev, record.subarray(4, 48)]);
}

/** Proof header chain: the first header in full, its descendants as compact records. */
function proofHeaders(headers) {
  return Buffer.concat([headers[0], ...headers.slice(1).map(compactHeader)]);
}

/** Fields of a raw 80-byte header; `hash` in internal byte order (as the contracts store it). */
function parseHeader(header) {
  const h = Buffer.from(header);
  if (h.length !== 80) throw new Error(`header of ${h.length} bytes`);
  return {
    header: h,
    hash: dsha256(h),
    version: h.readUInt32LE(0),
    prev: h.subarray(4, 36),
    merkleRoot: h.subarray(36, 68),
    time: h.readUInt32LE(68),
    bits: h.readUInt32LE(72),
    nonce: h.readUInt32LE(76),
  };
}

/** A copy of an 80-byte header with its time (and so its hash) changed. */
function withTime(header, time) {
  const h = Buffer.from(header);
  h.writeUInt32LE(time >>> 0, 68);
  return h;
}

/** The 11 checkpoint times (oldest first) of a chain spaced `spacing` seconds ending at `time`. */
function checkpointTimes(time, spacing = 600) {
  return Array.from({ length: 11 }, (_, i) => time - (10 - i) * spacing);
}

module.exports = {
  compactHeader, expandHeader, proofHeaders, checkpointTimes, parseHeader, withTime,
  REGTEST_POW_LIMIT, MAINNET_POW_LIMIT, sha256, dsha256, leNumber, decodeCompact, encodeCompact, retarget, work,
  headerBytes, mine, mineBad, mineChain, merkleRoot, merkleBranch, serializeTx, coinbaseTx, varint, u32le,
};
