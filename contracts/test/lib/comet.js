// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Test-only CometBFT v0.38 encoders for GoatLightClient: protobuf, RFC-6962 Merkle trees,
// Header.Hash, vote sign bytes, secp256k1 validator sets and commits, and GOAT's tx0 (a
// cosmos TxRaw whose body holds /goat.goat.v1.MsgNewEthBlock with the execution payload).
// Written from the CometBFT and GOAT sources (types/block.go, types/vote.go,
// types/canonical.go, crypto/merkle, types/validator.go; proto/goat/goat/v1/{tx,goat}.proto).
'use strict';

const crypto = require('crypto');
const path = require('path');
const { secp256k1 } = require(path.join(__dirname, '..', '..', '..', 'tools', 'node_modules', '@noble', 'curves', 'secp256k1'));
const { keccakHex, strip0x } = require('./abi');

const buf = (h) => (Buffer.isBuffer(h) ? h : Buffer.from(strip0x(h), 'hex'));
const hex = (b) => '0x' + Buffer.from(b).toString('hex');
const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
const ripemd160 = (b) => crypto.createHash('ripemd160').update(b).digest();
const N = secp256k1.CURVE.n;

// ------------------------------------------------------------------------------------
// Protobuf
// ------------------------------------------------------------------------------------

/** Varint of an integer; negative numbers as their 64-bit two's complement (10 bytes). */
function varint(value) {
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n;
  const out = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

const tag = (field, wt) => varint((field << 3) | wt);
/** A varint field, omitted when zero (proto3). */
const vfield = (field, v) => (BigInt(v) === 0n ? Buffer.alloc(0) : Buffer.concat([tag(field, 0), varint(v)]));
/** A length-delimited field (always written: callers decide about empty values). */
const lfield = (field, bytes) => Buffer.concat([tag(field, 2), varint(bytes.length), Buffer.from(bytes)]);
/** A length-delimited field omitted when empty. */
const lopt = (field, bytes) => (bytes.length ? lfield(field, bytes) : Buffer.alloc(0));
/** sfixed64 field (little-endian), omitted when zero. */
function sfixed64(field, v) {
  let x = BigInt(v);
  if (x === 0n) return Buffer.alloc(0);
  if (x < 0n) x += 1n << 64n;
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(x);
  return Buffer.concat([tag(field, 1), b]);
}

// ------------------------------------------------------------------------------------
// Merkle (crypto/merkle: RFC 6962 with the split at the largest power of two below n)
// ------------------------------------------------------------------------------------

const leafHash = (x) => sha256(Buffer.concat([Buffer.from([0]), x]));
const innerHash = (l, r) => sha256(Buffer.concat([Buffer.from([1]), l, r]));
function splitPoint(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function merkleRoot(items) {
  if (items.length === 0) return sha256(Buffer.alloc(0));
  if (items.length === 1) return leafHash(items[0]);
  const k = splitPoint(items.length);
  return innerHash(merkleRoot(items.slice(0, k)), merkleRoot(items.slice(k)));
}

/** Aunts of item `index`, from the leaf up (CometBFT's proof order). */
function merkleAunts(items, index) {
  if (items.length <= 1) return [];
  const k = splitPoint(items.length);
  if (index < k) return [...merkleAunts(items.slice(0, k), index), merkleRoot(items.slice(k))];
  return [...merkleAunts(items.slice(k), index - k), merkleRoot(items.slice(0, k))];
}

// ------------------------------------------------------------------------------------
// Header, block id, votes
// ------------------------------------------------------------------------------------

const timestamp = ({ seconds, nanos = 0 }) => Buffer.concat([vfield(1, seconds), vfield(2, nanos)]);
const partSetHeader = ({ total, hash }) => Buffer.concat([vfield(1, total), lopt(2, buf(hash))]);
const blockId = (id) => Buffer.concat([lopt(1, buf(id.hash)), lfield(2, partSetHeader(id.parts))]);

/** The 14 encoded header fields Header.Hash merkleizes (cdcEncode: wrappers, empty -> nothing). */
function headerFields(h) {
  const bytesValue = (b) => lopt(1, buf(b));
  return [
    Buffer.concat([vfield(1, h.version.block), vfield(2, h.version.app)]),
    lopt(1, Buffer.from(h.chainId, 'utf8')),
    vfield(1, h.height),
    timestamp(h.time),
    blockId(h.lastBlockId),
    bytesValue(h.lastCommitHash),
    bytesValue(h.dataHash),
    bytesValue(h.validatorsHash),
    bytesValue(h.nextValidatorsHash),
    bytesValue(h.consensusHash),
    bytesValue(h.appHash),
    bytesValue(h.lastResultsHash),
    bytesValue(h.evidenceHash),
    bytesValue(h.proposerAddress),
  ];
}

const headerHash = (h) => merkleRoot(headerFields(h));

/** The LightHeader ABI tuple of GoatLightClient (chain id left out). */
function headerTuple(h) {
  return [h.version.block, h.version.app, h.height, h.time.seconds, h.time.nanos || 0,
    hex(buf(h.lastBlockId.hash)), h.lastBlockId.parts.total, hex(buf(h.lastBlockId.parts.hash)),
    hex(buf(h.lastCommitHash)), hex(buf(h.dataHash)), hex(buf(h.validatorsHash)), hex(buf(h.nextValidatorsHash)),
    hex(buf(h.consensusHash)), hex(buf(h.appHash)), hex(buf(h.lastResultsHash)), hex(buf(h.evidenceHash)),
    hex(buf(h.proposerAddress))];
}
const HEADER_TYPE = '(uint64,uint64,uint64,uint64,uint32,bytes32,uint32,bytes32,bytes32,bytes32,bytes32,bytes32,bytes32,bytes32,bytes32,bytes32,address)';

/**
 * VoteSignBytes: varint length || CanonicalVote{1 type, 2 height sfixed64, 3 round sfixed64,
 * 4 CanonicalBlockID (nil: omitted), 5 timestamp (always), 6 chain_id}.
 */
function voteSignBytes({ chainId, type = 2, height, round = 0, blockId: id = null, time }) {
  const body = Buffer.concat([
    vfield(1, type),
    sfixed64(2, height),
    sfixed64(3, round),
    id ? lfield(4, blockId(id)) : Buffer.alloc(0),
    lfield(5, timestamp(time)),
    lopt(6, Buffer.from(chainId, 'utf8')),
  ]);
  return Buffer.concat([varint(body.length), body]);
}

// ------------------------------------------------------------------------------------
// Validators
// ------------------------------------------------------------------------------------

/** A secp256k1 validator from a seed string: keys, addresses (CometBFT and Ethereum), power. */
function validator(seed, power) {
  const priv = sha256(Buffer.from(`gmrelay comet validator ${seed}`));
  const full = Buffer.from(secp256k1.getPublicKey(priv, false)); // 0x04 || x || y
  const compressed = Buffer.from(secp256k1.getPublicKey(priv, true));
  const key64 = full.subarray(1);
  return {
    seed, priv, key64, compressed, power: BigInt(power),
    cometAddress: ripemd160(sha256(compressed)),
    ethAddress: '0x' + keccakHex(key64).slice(-40),
  };
}

/** CometBFT order: voting power descending, then address ascending. */
function sortSet(vals) {
  return vals.slice().sort((a, b) => (a.power !== b.power ? (a.power > b.power ? -1 : 1) : Buffer.compare(a.cometAddress, b.cometAddress)));
}

/** SimpleValidator{1 PublicKey{2 secp256k1}, 2 voting_power}. */
const simpleValidator = (v) => Buffer.concat([lfield(1, lfield(2, v.compressed)), vfield(2, v.power)]);
const validatorSetHash = (vals) => merkleRoot(vals.map(simpleValidator));

/** GoatLightClient's validator records: x || y || power (8 bytes, big-endian). */
function validatorRecords(vals) {
  return hex(Buffer.concat(vals.map((v) => {
    const p = Buffer.alloc(8);
    p.writeBigUInt64BE(v.power);
    return Buffer.concat([v.key64, p]);
  })));
}

// ------------------------------------------------------------------------------------
// Commits
// ------------------------------------------------------------------------------------

/** Signs sign bytes: 64-byte r || s over sha256, low s, with the recovery bit. */
function signVote(signBytes, v) {
  const sig = secp256k1.sign(sha256(signBytes), v.priv, { lowS: true });
  return { r: sig.r, s: sig.s, parity: sig.recovery };
}

/**
 * A commit in GoatLightClient's encoding: round (4) || parts total (4) || parts hash (32) ||
 * votes (index (1) || seconds (8) || nanos (4) || r (32) || s with parity in bit 255 (32)).
 * `votes`: [{index, seconds, nanos, r, s, parity}].
 */
function encodeCommit({ round = 0, parts, votes }) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(round, 0);
  head.writeUInt32BE(parts.total, 4);
  const recs = votes.map((v) => {
    const b = Buffer.alloc(77);
    b[0] = v.index;
    b.writeBigInt64BE(BigInt(v.seconds), 1);
    b.writeUInt32BE(v.nanos, 9);
    Buffer.from(v.r.toString(16).padStart(64, '0'), 'hex').copy(b, 13);
    const vs = v.s | (BigInt(v.parity) << 255n);
    Buffer.from(vs.toString(16).padStart(64, '0'), 'hex').copy(b, 45);
    return b;
  });
  return hex(Buffer.concat([head, buf(parts.hash), ...recs]));
}

/**
 * Precommits of the validators at `signers` (indexes into the ordered `vals`) for the block
 * (hash, parts) at height/round; `nil` lists indexes that vote nil (signed without block id).
 */
function makeVotes({ chainId, height, round = 0, hash, parts, vals, signers, nil = [], time }) {
  return signers.map((index, k) => {
    const t = { seconds: time.seconds + 1 + (k % 3), nanos: (time.nanos || 0) + 1000 * index + 7 };
    const id = nil.includes(index) ? null : { hash, parts };
    const sb = voteSignBytes({ chainId, type: 2, height, round, blockId: id, time: t });
    return { index, seconds: t.seconds, nanos: t.nanos, ...signVote(sb, vals[index]) };
  });
}

// ------------------------------------------------------------------------------------
// GOAT tx0
// ------------------------------------------------------------------------------------

const MSG_NEW_ETH_BLOCK = '/goat.goat.v1.MsgNewEthBlock';

/**
 * ExecutionPayload (proto/goat/goat/v1/goat.proto): 1 parent_hash, 2 fee_recipient,
 * 3 state_root, 4 receipts_root, 5 logs_bloom, 6 prev_randao, 7 block_number, 8 gas_limit,
 * 9 gas_used, 10 timestamp, 11 extra_data, 12 base_fee_per_gas (string), 13 block_hash,
 * 14 transactions (repeated), 15 beacon_root, 16 blob_gas_used, 17 excess_blob_gas,
 * 24 requests (repeated). `fields` may override or append raw encoded fields.
 */
function executionPayload(p, { extra = [], order = null } = {}) {
  const fields = [
    [1, lfield(1, buf(p.parentHash))],
    [2, lfield(2, buf(p.feeRecipient || '0x' + '11'.repeat(20)))],
    [3, lfield(3, buf(p.stateRoot || '0x' + '22'.repeat(32)))],
    [4, lfield(4, buf(p.receiptsRoot || '0x' + '33'.repeat(32)))],
    [5, lfield(5, Buffer.alloc(256, 0))],
    [6, lfield(6, buf(p.prevRandao || '0x' + '44'.repeat(32)))],
    [7, vfield(7, p.blockNumber)],
    [8, vfield(8, p.gasLimit || 30_000_000)],
    [9, vfield(9, p.gasUsed || 21_000)],
    [10, vfield(10, p.timestamp || 1_700_000_000)],
    [11, lopt(11, buf(p.extraData || '0x'))],
    [12, lfield(12, Buffer.from(String(p.baseFee || 1_000_000), 'utf8'))],
    [13, lfield(13, buf(p.blockHash || '0x' + '55'.repeat(32)))],
    ...(p.transactions || []).map((t) => [14, lfield(14, buf(t))]),
    [15, lfield(15, buf(p.beaconRoot || '0x' + '66'.repeat(32)))],
    ...(p.requests || ['0x01' + 'aa'.repeat(40)]).map((r) => [24, lfield(24, buf(r))]),
    ...extra,
  ];
  const list = order ? order(fields) : fields;
  return Buffer.concat(list.map((f) => f[1]));
}

/** TxRaw{1 body, 2 auth_info, 3 signatures} with TxBody{1 [Any{type_url, MsgNewEthBlock{1 proposer, 2 payload}}], 3 timeout_height}. */
function makeTx0(p, { typeUrl = MSG_NEW_ETH_BLOCK, payloadOpts = {}, msgOverride = null, bodyOverride = null } = {}) {
  const payload = executionPayload(p, payloadOpts);
  const msg = msgOverride || Buffer.concat([lfield(1, Buffer.from('goat1proposer0000000000000000000000000000', 'utf8')), lfield(2, payload)]);
  const any = Buffer.concat([lfield(1, Buffer.from(typeUrl, 'utf8')), lfield(2, msg)]);
  const body = bodyOverride || Buffer.concat([lfield(1, any), vfield(3, p.timeoutHeight || 1234)]);
  const authInfo = Buffer.concat([lfield(1, crypto.randomBytes(40)), lfield(2, crypto.randomBytes(20))]);
  return Buffer.concat([lfield(1, body), lfield(2, authInfo), lfield(3, crypto.randomBytes(64))]);
}

/** data_hash of the block's txs (Merkle over sha256(tx)) and tx `index`'s aunts. */
function dataHash(txs) {
  return merkleRoot(txs.map((t) => sha256(t)));
}
function txProof(txs, index = 0) {
  return merkleAunts(txs.map((t) => sha256(t)), index).map(hex);
}

module.exports = {
  varint, tag, vfield, lfield, lopt, sfixed64, sha256, ripemd160, hex, buf, N,
  merkleRoot, merkleAunts, leafHash, innerHash,
  headerFields, headerHash, headerTuple, HEADER_TYPE, voteSignBytes, blockId, timestamp,
  validator, sortSet, simpleValidator, validatorSetHash, validatorRecords,
  signVote, encodeCommit, makeVotes,
  MSG_NEW_ETH_BLOCK, executionPayload, makeTx0, dataHash, txProof,
};
