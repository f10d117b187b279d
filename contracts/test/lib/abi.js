// SPDX-License-Identifier: MIT OR Apache-2.0
// Minimal Solidity ABI encoder for tests: static words, bytes, string, arrays, tuples.
'use strict';

const path = require('path');
const { keccak256 } = require(path.join(__dirname, '..', '..', '..', 'tools', 'node_modules', 'js-sha3'));

function strip0x(h) {
  return h.startsWith('0x') ? h.slice(2) : h;
}

function keccakHex(hexOrBytes) {
  const buf = typeof hexOrBytes === 'string' ? Buffer.from(strip0x(hexOrBytes), 'hex') : Buffer.from(hexOrBytes);
  return '0x' + keccak256(buf);
}

function keccakText(text) {
  return '0x' + keccak256(Buffer.from(text, 'utf8'));
}

function selector(signature) {
  return keccakText(signature).slice(0, 10);
}

/** Parses "uint256", "bytes[]", "(bytes,uint256)[]" into {kind, ...}. */
function parseType(t) {
  t = t.trim();
  if (t.endsWith('[]')) return { kind: 'array', inner: parseType(t.slice(0, -2)) };
  if (t.startsWith('(')) {
    const inner = t.slice(1, -1);
    const parts = [];
    let depth = 0;
    let cur = '';
    for (const ch of inner) {
      if (ch === '(') depth++;
      if (ch === ')') depth--;
      if (ch === ',' && depth === 0) {
        parts.push(cur);
        cur = '';
      } else cur += ch;
    }
    if (cur.length) parts.push(cur);
    return { kind: 'tuple', components: parts.map(parseType) };
  }
  if (t === 'bytes' || t === 'string') return { kind: t };
  return { kind: 'static', name: t };
}

function isDynamic(p) {
  if (p.kind === 'bytes' || p.kind === 'string' || p.kind === 'array') return true;
  if (p.kind === 'tuple') return p.components.some(isDynamic);
  return false;
}

function word(big) {
  let v = BigInt(big);
  if (v < 0n) v = (1n << 256n) + v;
  return v.toString(16).padStart(64, '0');
}

function encodeStatic(name, v) {
  if (name === 'address') return strip0x(v).toLowerCase().padStart(64, '0');
  if (name === 'bool') return word(v ? 1 : 0);
  if (/^bytes\d+$/.test(name)) return strip0x(v).padEnd(64, '0');
  if (/^u?int\d*$/.test(name)) return word(v);
  throw new Error('unsupported type ' + name);
}

function encodeValue(p, v) {
  switch (p.kind) {
    case 'static':
      return encodeStatic(p.name, v);
    case 'bytes':
    case 'string': {
      const data = p.kind === 'string' ? Buffer.from(v, 'utf8').toString('hex') : strip0x(v);
      const len = data.length / 2;
      const padded = data.padEnd(Math.ceil(len / 32) * 64, '0');
      return word(len) + padded;
    }
    case 'array':
      return word(v.length) + encodeSeq(v.map(() => p.inner), v);
    case 'tuple':
      return encodeSeq(p.components, v);
    default:
      throw new Error('bad type');
  }
}

function encodeSeq(params, values) {
  if (params.length !== values.length) throw new Error(`arity ${params.length} != ${values.length}`);
  const heads = [];
  const tails = [];
  let headSize = 0;
  for (const p of params) headSize += isDynamic(p) ? 32 : encodeValue(p, zeroOf(p)).length / 2;
  let tailOffset = headSize;
  params.forEach((p, i) => {
    const enc = encodeValue(p, values[i]);
    if (isDynamic(p)) {
      heads.push(word(tailOffset));
      tails.push(enc);
      tailOffset += enc.length / 2;
    } else heads.push(enc);
  });
  return heads.join('') + tails.join('');
}

function zeroOf(p) {
  if (p.kind === 'static') return p.name === 'address' ? '0x' + '00'.repeat(20) : p.name.startsWith('bytes') ? '0x' : 0;
  if (p.kind === 'tuple') return p.components.map(zeroOf);
  return null;
}

/** ABI-encodes values for a list of type strings; returns 0x-hex. */
function encode(types, values) {
  return '0x' + encodeSeq(types.map(parseType), values);
}

/** Calldata for "name(type,...)" with values. */
function calldata(signature, values) {
  const open = signature.indexOf('(');
  const inner = signature.slice(open + 1, -1);
  const types = inner.length ? parseType('(' + inner + ')').components : [];
  return selector(signature) + encodeSeq(types, values);
}

/** Splits 0x return data into 32-byte words (hex strings). */
function words(hex) {
  const h = strip0x(hex);
  const out = [];
  for (let i = 0; i < h.length; i += 64) out.push('0x' + h.slice(i, i + 64));
  return out;
}

module.exports = { encode, calldata, selector, keccakHex, keccakText, words, word, strip0x };
