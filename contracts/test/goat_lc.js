// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Scenario tests of GoatLightClient on anvil: CometBFT's published encoding vectors, commits
// of 3 and 20 secp256k1 validators, adjacent and skipping headers, a validator-set change,
// each refusal by its named error, misbehaviour freezing the client, and a GOAT payment
// settled by PaymentSettlement against a block proven by consensus. EVM blocks come from the
// "GOAT" anvil node (real headers: keccak(RLP) = block hash); CometBFT blocks and votes are
// built by lib/comet.js. Called by run.js (suite "goatlc").
'use strict';

const crypto = require('crypto');
const abi = require('./lib/abi');
const eth = require('./lib/eth');
const comet = require('./lib/comet');
const { signDigest, addressOf, KEYS } = require('./lib/chain');

const { calldata, keccakText, keccakHex, word } = abi;
const { hex, buf, HEADER_TYPE } = comet;
const rand32 = () => crypto.randomBytes(32);
const big = (h) => BigInt(h);
const ZERO20 = '0x' + '00'.repeat(20);
const ZERO32 = '0x' + '00'.repeat(32);

const SUBMIT = `submit(${HEADER_TYPE},bytes,bytes,bytes32[],bytes,bytes)`;
const MISBEHAVIOUR = `submitMisbehaviour(${HEADER_TYPE},bytes,${HEADER_TYPE},bytes)`;
const VERIFY = 'verifyBlock(bytes32,uint256,uint256,bytes32,bytes)';
const ANCESTORS = 'proveAncestors(bytes[])';
const ATTESTED = 'BlockAttested(bytes32,uint256,uint256,bytes32)';
const CTOR = ['string', 'uint256', 'uint64', 'uint64', 'uint32', 'bytes32', 'bytes32', 'bytes', 'uint256'];
const CHAIN_ID = 'goat-mainnet';
const DAY = 86_400;

/**
 * A simulated GOAT CometBFT chain: the trusted header, the set signing the next header, and
 * blocks built on demand (not applied until `accept`), so conflicting or broken ones can be made.
 */
class Sim {
  constructor({ chainId = CHAIN_ID, vals, height = 1000, seconds }) {
    this.chainId = chainId;
    this.vals = vals;
    const genesis = this.header({ height, seconds, lastId: { hash: rand32(), parts: { total: 1, hash: rand32() } },
      dataHash: rand32(), vals, nextVals: vals });
    this.trusted = { header: genesis, hash: comet.headerHash(genesis), parts: { total: 1, hash: rand32() } };
  }

  header({ height, seconds, nanos = 500_000_000, lastId, dataHash, vals, nextVals, chainId = this.chainId }) {
    return {
      version: { block: 11, app: 1 }, chainId, height, time: { seconds, nanos }, lastBlockId: lastId,
      lastCommitHash: rand32(), dataHash, validatorsHash: comet.validatorSetHash(vals),
      nextValidatorsHash: comet.validatorSetHash(nextVals), consensusHash: rand32(), appHash: rand32(),
      lastResultsHash: rand32(), evidenceHash: comet.sha256(Buffer.alloc(0)), proposerAddress: vals[0].cometAddress,
    };
  }

  /** A block above the trusted one whose tx0 proves `evm` (its parent) final. */
  block(evm, { step = 1, seconds, nextVals = this.vals, vals = this.vals, extraTxs = 2, tx0Opts = {}, payload = {},
    lastId, chainId } = {}) {
    const t = this.trusted.header;
    const height = t.height + step;
    const tx0 = comet.makeTx0({ parentHash: evm.hash, blockNumber: evm.number + 1, blockHash: rand32(),
      transactions: [crypto.randomBytes(110), crypto.randomBytes(140)], ...payload }, tx0Opts);
    const txs = [tx0];
    for (let i = 0; i < extraTxs; i++) txs.push(crypto.randomBytes(120 + i));
    const header = this.header({ height, seconds: seconds ?? t.time.seconds + 2 * step,
      lastId: lastId || (step === 1 ? { hash: this.trusted.hash, parts: this.trusted.parts } : { hash: rand32(), parts: { total: 1, hash: rand32() } }),
      dataHash: comet.dataHash(txs), vals, nextVals, chainId });
    return { header, hash: comet.headerHash(header), parts: { total: 1, hash: rand32() }, tx0, txs, evm, vals, nextVals };
  }

  /** The commit of `signers` (indexes into the block's signing set) for block `b`. */
  commit(b, { signers, nil = [], round = 0, chainId = this.chainId, hash = b.hash, mutate = null } = {}) {
    const votes = comet.makeVotes({ chainId, height: b.header.height, round, hash, parts: b.parts, vals: b.vals,
      signers: signers ?? b.vals.map((_, i) => i), nil, time: b.header.time });
    if (mutate) mutate(votes);
    return comet.encodeCommit({ round, parts: b.parts, votes });
  }

  args(b, { commit, tx0 = b.tx0, proof = comet.txProof(b.txs, 0), rlp = b.evm.rlp, next } = {}) {
    const changed = Buffer.compare(b.header.nextValidatorsHash, b.header.validatorsHash) !== 0;
    return [comet.headerTuple(b.header), commit ?? this.commit(b), hex(tx0), proof, hex(rlp),
      next ?? (changed ? comet.validatorRecords(b.nextVals) : '0x')];
  }

  accept(b) {
    this.trusted = { header: b.header, hash: b.hash, parts: b.parts };
    this.vals = b.nextVals;
  }
}

module.exports = function suites(t) {
  const { test, assert, eq, expectRevert, expectError, gas } = t;

  /** Real EVM blocks of the GOAT node: {hash, number, timestamp, receiptsRoot, rlp}. */
  async function evmBlock(goat, number) {
    const b = await goat.rpc('eth_getBlockByNumber', ['0x' + number.toString(16), false]);
    const rlp = eth.encodeHeader(b);
    eq(keccakHex(rlp), b.hash, 'keccak(RLP header) is the block hash');
    return { hash: b.hash, number: Number(big(b.number)), timestamp: Number(big(b.timestamp)), receiptsRoot: b.receiptsRoot, rlp, block: b };
  }

  async function newEvmBlocks(goat, count) {
    const out = [];
    for (let i = 0; i < count; i++) {
      await goat.rpc('evm_mine', []);
      const n = Number(big(await goat.rpc('eth_blockNumber', [])));
      out.push(await evmBlock(goat, n));
    }
    return out;
  }

  async function metisNow(metis) {
    return Number(big((await metis.rpc('eth_getBlockByNumber', ['latest', false])).timestamp));
  }

  async function deploy(metis, sim, { trustingPeriod = 2 * DAY, chainId = sim.chainId, records } = {}) {
    const h = sim.trusted.header;
    return metis.deploy('GoatLightClient', CTOR, [chainId, 2345, h.height, h.time.seconds, h.time.nanos,
      hex(sim.trusted.hash), hex(h.nextValidatorsHash), records ?? comet.validatorRecords(sim.vals), trustingPeriod]);
  }

  const valSet = (prefix, powers) => comet.sortSet(powers.map((p, i) => comet.validator(`${prefix}-${i}`, p)));

  async function goatLcSuite(metis, goat) {
    console.log('GoatLightClient');
    const now = await metisNow(metis);
    const vals3 = valSet('three', [40, 30, 29]); // total 99: > 66 needed
    const sim = new Sim({ vals: vals3, seconds: now - 20_000 });
    const client = await deploy(metis, sim);
    const evm = await newEvmBlocks(goat, 8);

    await test('CometBFT vectors: TestHeaderHash and TestVoteSignBytesTestVectors, in JS and through the views', async () => {
      const th = (s) => comet.sha256(Buffer.from(s));
      const h = { version: { block: 1, app: 2 }, chainId: 'chainId', height: 3, time: { seconds: Date.UTC(2019, 9, 13, 16, 14, 44) / 1000, nanos: 0 },
        lastBlockId: { hash: Buffer.alloc(32), parts: { total: 6, hash: Buffer.alloc(32) } }, lastCommitHash: th('last_commit_hash'),
        dataHash: th('data_hash'), validatorsHash: th('validators_hash'), nextValidatorsHash: th('next_validators_hash'),
        consensusHash: th('consensus_hash'), appHash: th('app_hash'), lastResultsHash: th('last_results_hash'),
        evidenceHash: th('evidence_hash'), proposerAddress: th('proposer_address').subarray(0, 20) };
      const expected = '0xf740121f553b5418c3efbd343c2dbfe9e007bb67b0d020a0741374bab65242a4';
      eq(hex(comet.headerHash(h)), expected, 'JS header hash');
      eq(await metis.call(client, `hashHeader(string,${HEADER_TYPE})`, ['chainId', comet.headerTuple(h)]), expected, 'contract header hash');
      // types/vote_test.go: Go's zero time is -62135596800 s.
      const zero = { seconds: -62135596800, nanos: 0 };
      const vectors = [
        ['', 0, 0, 0, '0d2a0b088092b8c398feffffff01'],
        ['', 2, 1, 1, '2108021101000000000000001901000000000000002a0b088092b8c398feffffff01'],
        ['', 1, 1, 1, '2108011101000000000000001901000000000000002a0b088092b8c398feffffff01'],
        ['', 0, 1, 1, '1f1101000000000000001901000000000000002a0b088092b8c398feffffff01'],
        ['test_chain_id', 0, 1, 1, '2e1101000000000000001901000000000000002a0b088092b8c398feffffff01320d746573745f636861696e5f6964'],
      ];
      const VSB = 'voteSignBytes(string,uint8,int64,int64,bytes32,uint32,bytes32,int64,uint32)';
      for (const [chainId, type, height, round, want] of vectors) {
        eq(comet.voteSignBytes({ chainId, type, height, round, time: zero }).toString('hex'), want, `JS vector ${want.slice(0, 6)}`);
        const ret = await metis.call(client, VSB, [chainId, type, height, round, ZERO32, 0, ZERO32, zero.seconds, 0]);
        const len = Number(big('0x' + abi.strip0x(ret).slice(64, 128)));
        eq(abi.strip0x(ret).slice(128, 128 + 2 * len), want, `contract vector ${want.slice(0, 6)}`);
      }
      // A precommit for a block with a long chain id (2-byte length prefix) agrees too.
      const id = { hash: rand32(), parts: { total: 3, hash: rand32() } };
      const longId = 'goat-' + 'x'.repeat(45);
      const mine = comet.voteSignBytes({ chainId: longId, type: 2, height: 123456, round: 2, blockId: id, time: { seconds: 1_760_000_000, nanos: 123456789 } });
      assert(mine[0] & 0x80, 'two-byte length');
      const ret = await metis.call(client, VSB, [longId, 2, 123456, 2, hex(id.hash), 3, hex(id.parts.hash), 1_760_000_000, 123456789]);
      const len = Number(big('0x' + abi.strip0x(ret).slice(64, 128)));
      eq('0x' + abi.strip0x(ret).slice(128, 128 + 2 * len), hex(mine), 'precommit sign bytes');
      // Validator-set hashes (SimpleValidator{PublicKey{secp256k1}, power}) and a GOAT header.
      for (const set of [vals3, valSet('twenty', Array.from({ length: 20 }, (_, i) => 1000 + i * 37))]) {
        eq(await metis.call(client, 'hashValidatorSet(bytes)', [comet.validatorRecords(set)]), hex(comet.validatorSetHash(set)), `set of ${set.length}`);
      }
      eq(await metis.call(client, `hashHeader(string,${HEADER_TYPE})`, [CHAIN_ID, comet.headerTuple(sim.trusted.header)]), hex(sim.trusted.hash), 'GOAT-like header');
    });

    await test('deployment: trusted state, validator set, chain ids', async () => {
      const st = abi.words(await metis.call(client, 'trustedState()'));
      eq(big(st[0]), BigInt(sim.trusted.header.height), 'height');
      eq(big(st[1]), BigInt(sim.trusted.header.time.seconds) * 1_000_000_000n + 500_000_000n, 'time');
      eq(st[2], hex(sim.trusted.hash), 'hash');
      eq(st[3], hex(comet.validatorSetHash(vals3)), 'next validators hash');
      eq(big(st[4]), 0n, 'not frozen');
      const set = abi.words(await metis.call(client, 'validatorSet()'));
      eq(big(set[2]), 99n, 'total power');
      eq(big(set[3]), 3n, 'three validators');
      for (let i = 0; i < 3; i++) eq('0x' + set[4 + i].slice(-40), vals3[i].ethAddress, `validator ${i}`);
      eq(big(await metis.call(client, 'goatChainId()')), 2345n, 'EVM chain id');
      const ret = abi.strip0x(await metis.call(client, 'chainId()'));
      eq(Buffer.from(ret.slice(128, 128 + 24), 'hex').toString(), CHAIN_ID, 'CometBFT chain id');
      // Refused configurations.
      const h = sim.trusted.header;
      const bad = (over) => metis.revertDeploy('GoatLightClient', CTOR, Object.assign([CHAIN_ID, 2345, h.height, h.time.seconds, 0,
        hex(sim.trusted.hash), hex(h.nextValidatorsHash), comet.validatorRecords(vals3), DAY], over));
      expectError(await bad({ 6: hex(rand32()) }), 'ValidatorSetHashMismatch(bytes32,bytes32)');
      expectError(await bad({ 0: '' }), 'InvalidConfiguration()');
      expectError(await bad({ 8: 0 }), 'InvalidConfiguration()');
      expectError(await bad({ 7: '0x' }), 'InvalidValidatorSetLength(uint256)', word(0));
      const offCurve = buf(comet.validatorRecords(vals3));
      offCurve[63] ^= 1;
      expectError(await bad({ 7: hex(offCurve) }), 'KeyNotOnCurve(uint256)', word(0));
      expectError(await bad({ 7: comet.validatorRecords([vals3[0], vals3[0]]) }), 'DuplicateValidator(address)');
      expectError(await bad({ 7: comet.validatorRecords([{ ...vals3[0], power: 0n }]) }), 'InvalidVotingPower(uint256)', word(0));
    });

    await test('accepts a 3-validator commit; verifyBlock then serves exactly the parent EVM block', async () => {
      const b = sim.block(evm[0]);
      eq(await metis.call(client, `hashHeader(string,${HEADER_TYPE})`, [CHAIN_ID, comet.headerTuple(b.header)]), hex(b.hash), 'header hash');
      const receipt = await metis.send(client, SUBMIT, sim.args(b));
      const used = gas(`GoatLightClient.submit, 3 validators, 3 votes (adjacent; tx0 ${b.tx0.length} B, EVM header ${b.evm.rlp.length} B)`, receipt);
      sim.accept(b);
      assert(used <= 150_000, `gas ${used} > 150k`);
      const e = evm[0];
      await metis.call(client, VERIFY, [e.hash, e.number, e.timestamp, e.receiptsRoot, '0x']);
      eq(big(await metis.call(client, 'isKnown(bytes32)', [e.hash])), 1n, 'known');
      eq(await metis.call(client, 'attestation(bytes32)', [e.hash]),
        keccakHex(abi.encode(['uint256', 'uint256', 'bytes32'], [e.number, e.timestamp, e.receiptsRoot])), 'commitment');
      await expectRevert(metis, client, VERIFY, [e.hash, e.number, e.timestamp + 1, e.receiptsRoot, '0x'], 'UnknownGoatBlock(bytes32)', abi.strip0x(e.hash));
      await expectRevert(metis, client, VERIFY, [e.hash, e.number + 1, e.timestamp, e.receiptsRoot, '0x'], 'UnknownGoatBlock(bytes32)');
      await expectRevert(metis, client, VERIFY, [evm[1].hash, evm[1].number, evm[1].timestamp, evm[1].receiptsRoot, '0x'], 'UnknownGoatBlock(bytes32)');
      await expectRevert(metis, client, VERIFY, [e.hash, e.number, e.timestamp, e.receiptsRoot, '0x01'], 'SignaturesNotSupported()');
      const log = receipt.logs.find((l) => l.topics[0] === keccakText('BlockAttested(bytes32,uint256,uint256,bytes32)'));
      eq(log.topics[1], e.hash, 'BlockAttested');
      const st = abi.words(await metis.call(client, 'trustedState()'));
      eq(big(st[0]), BigInt(b.header.height), 'trusted height');
      eq(st[2], hex(b.hash), 'trusted hash');
    });

    await test('several blocks in a row, a skip of 50 heights, and a 2-of-3 commit with > 2/3 power', async () => {
      for (let i = 1; i <= 3; i++) {
        const b = sim.block(evm[i]);
        await metis.send(client, SUBMIT, sim.args(b));
        sim.accept(b);
      }
      const skip = sim.block(evm[4], { step: 50 });
      const receipt = await metis.send(client, SUBMIT, sim.args(skip, { commit: sim.commit(skip, { signers: [0, 2] }) }));
      gas('GoatLightClient.submit, 3 validators, 2 votes (skipping 50 heights)', receipt);
      sim.accept(skip);
      for (const e of evm.slice(1, 5)) await metis.call(client, VERIFY, [e.hash, e.number, e.timestamp, e.receiptsRoot, '0x']);
      // A single-transaction block: tx0 is the whole data_hash tree (no aunts).
      const single = sim.block(evm[5], { extraTxs: 0 });
      eq(comet.txProof(single.txs).length, 0, 'no aunts');
      await metis.send(client, SUBMIT, sim.args(single));
      sim.accept(single);
    });

    await test('refusals: signatures and power', async () => {
      const b = sim.block(evm[6]);
      const attempt = (commit, error, argsHex) => expectRevert(metis, client, SUBMIT, sim.args(b, { commit }), error, argsHex);
      // High s: an s above n/2 is refused before recovery. The malleable twin of a real
      // signature (n - s, other parity) cannot even be written: n - s >= 2^255 overlaps the
      // parity bit, so it recovers someone else.
      await attempt(sim.commit(b, { mutate: (vs) => { vs[1].s = comet.N / 2n + 1n; } }), 'HighS(uint256)', word(1));
      await attempt(sim.commit(b, { mutate: (vs) => { vs[1].s = comet.N - vs[1].s; vs[1].parity ^= 1; } }), 'BadVoteSignature(uint256,address)');
      // A wrong parity hint recovers another key.
      await attempt(sim.commit(b, { mutate: (vs) => { vs[2].parity ^= 1; } }), 'BadVoteSignature(uint256,address)');
      // Votes signed for another chain id (the contract hashes its own chain id).
      await attempt(sim.commit(b, { chainId: 'goat-testnet3' }), 'BadVoteSignature(uint256,address)');
      // The same validator twice (its power counted once would still be too little).
      await attempt(sim.commit(b, { signers: [0, 1, 1] }), 'DuplicateVote(uint256)', word(1));
      // A NIL vote passed as a COMMIT vote: it signed no block id.
      await attempt(sim.commit(b, { nil: [2] }), 'BadVoteSignature(uint256,address)');
      // Power: 30 + 29 = 59 <= 66; 40 alone; nothing.
      await attempt(sim.commit(b, { signers: [1, 2] }), 'InsufficientVotingPower(uint256,uint256)', word(59) + word(99));
      await attempt(sim.commit(b, { signers: [0] }), 'InsufficientVotingPower(uint256,uint256)', word(40) + word(99));
      await attempt(sim.commit(b, { signers: [] }), 'InsufficientVotingPower(uint256,uint256)', word(0) + word(99));
      // A commit for another round signs other bytes; an index outside the set; bad lengths.
      const other = sim.commit(b, { round: 1 });
      await attempt('0x00000000' + abi.strip0x(other).slice(8), 'BadVoteSignature(uint256,address)');
      await attempt(sim.commit(b, { mutate: (vs) => { vs[2].index = 3; } }), 'VoteIndexOutOfRange(uint256,uint256)', word(3) + word(3));
      const good = sim.commit(b);
      await attempt(good.slice(0, -2), 'MalformedCommit(uint256)', word(40 + 3 * 77 - 1));
      await attempt('0x' + '00'.repeat(39), 'MalformedCommit(uint256)', word(39));
      // Votes for another header (same height) do not count for this one.
      const twin = sim.block(evm[6]);
      await attempt(sim.commit(twin), 'BadVoteSignature(uint256,address)');
      // A header hashed with another chain id: its commit does not verify here.
      const foreign = sim.block(evm[6], { chainId: 'goat-testnet3' });
      await expectRevert(metis, client, SUBMIT, sim.args(foreign, { commit: sim.commit(foreign, { chainId: 'goat-testnet3' }) }), 'BadVoteSignature(uint256,address)');
      // Finally the honest commit goes through.
      await metis.send(client, SUBMIT, sim.args(b, { commit: good }));
      sim.accept(b);
    });

    await test('refusals: header against the trusted state (height, link, set, time)', async () => {
      const e = evm[7];
      const trusted = sim.trusted.header;
      const send = (b, error, argsHex) => expectRevert(metis, client, SUBMIT, sim.args(b), error, argsHex);
      await send(sim.block(e, { step: 0 }), 'HeightNotAfterTrusted(uint256,uint256)', word(trusted.height) + word(trusted.height));
      await send(sim.block(e, { step: -3 }), 'HeightNotAfterTrusted(uint256,uint256)');
      const unlinked = sim.block(e, { lastId: { hash: rand32(), parts: sim.trusted.parts } });
      await send(unlinked, 'LastBlockIdMismatch(bytes32,bytes32)', abi.strip0x(hex(sim.trusted.hash)) + abi.strip0x(hex(unlinked.header.lastBlockId.hash)));
      // A stale (or any other) validator set: validators_hash must be the trusted next set.
      const stale = sim.block(e, { vals: valSet('stale', [40, 30, 29]) });
      await send(stale, 'ValidatorSetMismatch(bytes32,bytes32)', abi.strip0x(hex(comet.validatorSetHash(vals3))) + abi.strip0x(hex(stale.header.validatorsHash)));
      await send(sim.block(e, { seconds: trusted.time.seconds - 1 }), 'HeaderTimeNotAfterTrusted(uint256,uint256)');
      const future = (await metisNow(metis)) + 1000;
      await send(sim.block(e, { seconds: future }), 'HeaderFromFuture(uint256,uint256)');
      // An expired trusted header: a client whose trusting period ended.
      const old = new Sim({ vals: vals3, seconds: (await metisNow(metis)) - 20_000 });
      const expired = await deploy(metis, old, { trustingPeriod: 3600 });
      await expectRevert(metis, expired, SUBMIT, old.args(old.block(e)), 'TrustingPeriodExpired(uint256,uint256)');
    });

    await test('refusals: tx0 (index, type URL, Merkle path, protobuf) and the EVM header', async () => {
      const e = evm[7];
      const b = sim.block(e);
      const attempt = (opts, error, argsHex) => expectRevert(metis, client, SUBMIT, sim.args(b, opts), error, argsHex);
      // The second transaction with its own (valid) proof: the path to data_hash is tx0's only.
      await attempt({ tx0: b.txs[1], proof: comet.txProof(b.txs, 1) }, 'DataHashMismatch(bytes32,bytes32)');
      // tx0 with a tampered aunt, a missing or an extra one.
      const proof = comet.txProof(b.txs, 0);
      await attempt({ proof: [proof[0], hex(rand32())] }, 'DataHashMismatch(bytes32,bytes32)');
      await attempt({ proof: proof.slice(0, 1) }, 'DataHashMismatch(bytes32,bytes32)');
      await attempt({ proof: [...proof, hex(rand32())] }, 'DataHashMismatch(bytes32,bytes32)');
      // Another tx0 than the block's.
      await attempt({ tx0: sim.block(e).tx0 }, 'DataHashMismatch(bytes32,bytes32)');
      // An EVM header that is not parent_hash's.
      await attempt({ rlp: evm[6].rlp }, 'EvmHeaderMismatch(bytes32,bytes32)', abi.strip0x(e.hash) + abi.strip0x(keccakHex(evm[6].rlp)));
      // Blocks whose tx0 is committed but wrong: built and signed like real ones.
      const built = async (opts, error, argsHex) => {
        const x = sim.block(e, opts);
        await expectRevert(metis, client, SUBMIT, sim.args(x), error, argsHex);
      };
      const send = Buffer.from('/cosmos.bank.v1beta1.MsgSend');
      await built({ tx0Opts: { typeUrl: '/cosmos.bank.v1beta1.MsgSend' } }, 'UnexpectedTypeUrl(bytes32)', send.subarray(0, 32).toString('hex').padEnd(64, '0'));
      await built({ tx0Opts: { typeUrl: '/goat.goat.v1.MsgNewEthBlocks' } }, 'UnexpectedTypeUrl(bytes32)');
      await built({ payload: { blockNumber: e.number + 2 } }, 'EvmNumberMismatch(uint256,uint256)', word(e.number + 2) + word(e.number));
      // A second parent_hash after the payload's last field: goatd would take the LAST one.
      const dupParent = [[1, comet.lfield(1, rand32())]];
      await built({ tx0Opts: { payloadOpts: { extra: dupParent } } }, 'MalformedProtobuf(uint256)');
      // block_number as bytes (wrong wire type); fields out of order.
      await built({ tx0Opts: { payloadOpts: { order: (fs) => fs.map((f) => (f[0] === 7 ? [7, comet.lfield(7, Buffer.from([1]))] : f)) } } }, 'MalformedProtobuf(uint256)');
      await built({ tx0Opts: { payloadOpts: { order: (fs) => [fs[1], fs[0], ...fs.slice(2)] } } }, 'MalformedProtobuf(uint256)');
      // An extra field in MsgNewEthBlock; a body whose first field is not messages[0].
      const payloadBytes = comet.executionPayload({ parentHash: e.hash, blockNumber: e.number + 1 });
      await built({ tx0Opts: { msgOverride: Buffer.concat([comet.lfield(2, payloadBytes), comet.lfield(3, Buffer.from([1]))]) } }, 'MalformedProtobuf(uint256)');
      const any = Buffer.concat([comet.lfield(1, Buffer.from(comet.MSG_NEW_ETH_BLOCK)), comet.lfield(2, comet.lfield(2, payloadBytes))]);
      await built({ tx0Opts: { bodyOverride: Buffer.concat([comet.lfield(2, Buffer.from('memo')), comet.lfield(1, any)]) } }, 'MalformedProtobuf(uint256)');
      // A truncated tx0 (committed as such).
      const whole = comet.makeTx0({ parentHash: e.hash, blockNumber: e.number + 1 });
      const cut = sim.block(e);
      cut.txs[0] = whole.subarray(0, whole.length - 5);
      cut.tx0 = cut.txs[0];
      cut.header.dataHash = comet.dataHash(cut.txs);
      cut.hash = comet.headerHash(cut.header);
      await expectRevert(metis, client, SUBMIT, sim.args(cut), 'MalformedProtobuf(uint256)');
      // The MsgNewEthBlock without proposer (proto3 omits an empty string) is accepted.
      const ok = sim.block(e, { tx0Opts: { msgOverride: comet.lfield(2, comet.executionPayload({ parentHash: e.hash, blockNumber: e.number + 1, transactions: [crypto.randomBytes(90)] })) } });
      await metis.send(client, SUBMIT, sim.args(ok));
      sim.accept(ok);
    });

    await test('validator-set change: 3 -> 4 validators, proven against next_validators_hash', async () => {
      const [e1, e2] = await newEvmBlocks(goat, 2);
      const vals4 = valSet('four', [25, 25, 25, 25]);
      const b = sim.block(e1, { nextVals: vals4 });
      // The set must be passed, match the hash, and be refused when nothing changes.
      await expectRevert(metis, client, SUBMIT, sim.args(b, { next: '0x' }), 'InvalidValidatorSetLength(uint256)', word(0));
      await expectRevert(metis, client, SUBMIT, sim.args(b, { next: comet.validatorRecords(vals4.slice().reverse()) }), 'ValidatorSetHashMismatch(bytes32,bytes32)');
      const plain = sim.block(e1);
      await expectRevert(metis, client, SUBMIT, sim.args(plain, { next: comet.validatorRecords(vals4) }), 'UnexpectedValidatorSet()');
      const receipt = await metis.send(client, SUBMIT, sim.args(b));
      gas('GoatLightClient.submit with a validator-set change (3 -> 4 validators)', receipt);
      eq(receipt.logs.filter((l) => l.topics[0] === keccakText('ValidatorSetUpdated(bytes32,uint256,uint256)')).length, 1, 'ValidatorSetUpdated');
      const oldVals = sim.vals;
      sim.accept(b);
      const set = abi.words(await metis.call(client, 'validatorSet()'));
      eq(big(set[2]), 100n, 'total power');
      // The old set can no longer sign the next header: a stale validators_hash is refused,
      // and the old keys' votes on a header naming the new set do not verify.
      const stale = sim.block(e2, { vals: oldVals });
      await expectRevert(metis, client, SUBMIT, sim.args(stale), 'ValidatorSetMismatch(bytes32,bytes32)');
      const next = sim.block(e2);
      const byOld = { ...next, vals: oldVals };
      await expectRevert(metis, client, SUBMIT, sim.args(next, { commit: sim.commit(byOld) }), 'BadVoteSignature(uint256,address)');
      // 3 of 4 equal validators: 75 > 66.
      await metis.send(client, SUBMIT, sim.args(next, { commit: sim.commit(next, { signers: [0, 1, 3] }) }));
      sim.accept(next);
    });

    await test('20 validators: 14 votes accepted, exactly 2/3 refused; a 20-validator set change', async () => {
      const vals20 = valSet('twenty', Array.from({ length: 20 }, () => 10));
      const big20 = new Sim({ vals: vals20, seconds: (await metisNow(metis)) - 10_000 });
      const c20 = await deploy(metis, big20);
      const [e1, e2, e3] = await newEvmBlocks(goat, 3);
      const b = big20.block(e1);
      const idx = (n) => Array.from({ length: n }, (_, i) => i);
      await expectRevert(metis, c20, SUBMIT, big20.args(b, { commit: big20.commit(b, { signers: idx(13) }) }),
        'InsufficientVotingPower(uint256,uint256)', word(130) + word(200));
      // 14 of 20 equal: 140 > 133 (CometBFT's threshold is total * 2 / 3 = 133, integer).
      const receipt = await metis.send(c20, SUBMIT, big20.args(b, { commit: big20.commit(b, { signers: idx(14).map((i) => i + 6) }) }));
      const used = gas('GoatLightClient.submit, 20 validators, 14 votes (adjacent)', receipt);
      big20.accept(b);
      assert(used <= 230_000, `gas ${used} > 230k`);
      await metis.call(c20, VERIFY, [e1.hash, e1.number, e1.timestamp, e1.receiptsRoot, '0x']);
      // Exactly 2/3 of the power with unequal powers: 200 of 300 is not enough.
      const rotated = valSet('rotated', Array.from({ length: 20 }, (_, i) => (i < 10 ? 20 : 10)));
      const change = big20.block(e2, { nextVals: rotated });
      const r2 = await metis.send(c20, SUBMIT, big20.args(change, { commit: big20.commit(change, { signers: idx(14) }) }));
      gas('GoatLightClient.submit with a validator-set change (20 -> 20 validators)', r2);
      big20.accept(change);
      const n = big20.block(e3);
      await expectRevert(metis, c20, SUBMIT, big20.args(n, { commit: big20.commit(n, { signers: [...idx(5), ...idx(10).map((i) => i + 10)] }) }),
        'InsufficientVotingPower(uint256,uint256)', word(200) + word(300));
      const r3 = await metis.send(c20, SUBMIT, big20.args(n, { commit: big20.commit(n, { signers: [...idx(6), ...idx(10).map((i) => i + 10)] }) }));
      gas('GoatLightClient.submit, 20 validators, 16 votes (unequal powers)', r3);
    });

    await test('proveAncestors: older EVM blocks proven final from a stored one; refusals', async () => {
      // 14 consecutive EVM blocks; submit proves only the newest (N = chain[13]).
      const chain = await newEvmBlocks(goat, 14);
      for (let i = 1; i < chain.length; i++) eq(chain[i].block.parentHash, chain[i - 1].hash, 'consecutive');
      const headers = (from, to) => chain.slice(from, to + 1).reverse().map((e) => hex(e.rlp)); // newest first
      const known = async (e) => big(await metis.call(client, 'isKnown(bytes32)', [e.hash]));
      const verify = (e) => metis.call(client, VERIFY, [e.hash, e.number, e.timestamp, e.receiptsRoot, '0x']);
      const attested = (receipt) => receipt.logs.filter((l) => l.topics[0] === keccakText(ATTESTED));
      const attempt = (hs, error, argsHex) => expectRevert(metis, client, ANCESTORS, [hs], error, argsHex);
      // The first header must be a stored block: N is not proven yet.
      await attempt(headers(12, 13), 'UnknownGoatBlock(bytes32)', abi.strip0x(chain[13].hash));
      const b = sim.block(chain[13]);
      await metis.send(client, SUBMIT, sim.args(b));
      sim.accept(b);
      eq(await known(chain[12]), 0n, 'N-1 not known before');
      await expectRevert(metis, client, VERIFY, [chain[12].hash, chain[12].number, chain[12].timestamp, chain[12].receiptsRoot, '0x'], 'UnknownGoatBlock(bytes32)');
      // Refusals: an unknown first header, a broken link (N-2 after N), too few headers.
      await attempt(headers(11, 12), 'UnknownGoatBlock(bytes32)', abi.strip0x(chain[12].hash));
      await attempt([hex(chain[13].rlp), hex(chain[11].rlp)], 'EvmHeaderMismatch(bytes32,bytes32)', abi.strip0x(chain[12].hash) + abi.strip0x(chain[11].hash));
      await attempt([...headers(12, 13), hex(chain[12].rlp)], 'EvmHeaderMismatch(bytes32,bytes32)', abi.strip0x(chain[11].hash) + abi.strip0x(chain[12].hash));
      await attempt(headers(13, 13), 'TooFewHeaders(uint256)', word(1));
      await attempt([], 'TooFewHeaders(uint256)', word(0));
      // N, N-1, N-2: N-1 and N-2 are stored like submit's block.
      const receipt = await metis.send(client, ANCESTORS, [headers(11, 13)]);
      gas('GoatLightClient.proveAncestors, 2 ancestors (3 headers)', receipt);
      const logs = attested(receipt);
      eq(logs.length, 2, 'BlockAttested events');
      for (const [log, e] of [[logs[0], chain[12]], [logs[1], chain[11]]]) {
        eq(log.topics[1], e.hash, 'BlockAttested hash');
        eq(log.data, '0x' + word(e.number) + word(e.timestamp) + abi.strip0x(e.receiptsRoot), 'BlockAttested data');
        eq(await known(e), 1n, 'known');
        eq(await metis.call(client, 'attestation(bytes32)', [e.hash]),
          keccakHex(abi.encode(['uint256', 'uint256', 'bytes32'], [e.number, e.timestamp, e.receiptsRoot])), 'commitment');
        await verify(e);
      }
      await expectRevert(metis, client, VERIFY, [chain[11].hash, chain[11].number, chain[11].timestamp + 1, chain[11].receiptsRoot, '0x'], 'UnknownGoatBlock(bytes32)');
      eq(await known(chain[10]), 0n, 'N-3 not known');
      // Again: nothing new, no event (idempotent).
      eq(attested(await metis.send(client, ANCESTORS, [headers(11, 13)])).length, 0, 'no event for stored blocks');
      // One ancestor, then ten, each from the oldest stored block.
      const one = await metis.send(client, ANCESTORS, [headers(10, 11)]);
      gas('GoatLightClient.proveAncestors, 1 ancestor (2 headers)', one);
      eq(attested(one).length, 1, 'one event');
      const ten = await metis.send(client, ANCESTORS, [headers(0, 10)]);
      gas('GoatLightClient.proveAncestors, 10 ancestors (11 headers)', ten);
      eq(attested(ten).length, 10, 'ten events');
      for (const e of chain) await verify(e);
      // A number that does not step down: a made-up EVM header whose parent hash names a
      // header with another number, proven by a (simulated) commit.
      const parent = eth.encodeHeader({ ...chain[0].block, number: '0x' + (big(chain[0].block.number) + 5n).toString(16) });
      const child = eth.encodeHeader({ ...chain[1].block, parentHash: keccakHex(parent) });
      const made = { hash: keccakHex(child), number: chain[1].number, timestamp: chain[1].timestamp, receiptsRoot: chain[1].receiptsRoot, rlp: child };
      const m = sim.block(made);
      await metis.send(client, SUBMIT, sim.args(m));
      sim.accept(m);
      await attempt([hex(child), hex(parent)], 'EvmNumberMismatch(uint256,uint256)', word(chain[1].number) + word(chain[0].number + 5));
    });

    await test('misbehaviour: two commits for one height freeze the client', async () => {
      const vals = valSet('mb', [40, 30, 29]);
      const s2 = new Sim({ vals, seconds: (await metisNow(metis)) - 5000 });
      const c = await deploy(metis, s2);
      const [e1, e2] = await newEvmBlocks(goat, 2);
      const b = s2.block(e1);
      await metis.send(c, SUBMIT, s2.args(b));
      s2.accept(b);
      const a1 = s2.block(e2, { step: 5 });
      const a2 = s2.block(e2, { step: 5 });
      const MB = (x, cx, y, cy) => [comet.headerTuple(x.header), cx, comet.headerTuple(y.header), cy];
      // Not a conflict: the same header twice, or two heights.
      await expectRevert(metis, c, MISBEHAVIOUR, MB(a1, s2.commit(a1), a1, s2.commit(a1)), 'NoConflict(uint256,uint256)');
      const other = s2.block(e2, { step: 6 });
      await expectRevert(metis, c, MISBEHAVIOUR, MB(a1, s2.commit(a1), other, s2.commit(other)), 'NoConflict(uint256,uint256)');
      // Each commit must carry > 2/3 of the stored set.
      await expectRevert(metis, c, MISBEHAVIOUR, MB(a1, s2.commit(a1), a2, s2.commit(a2, { signers: [1, 2] })), 'InsufficientVotingPower(uint256,uint256)');
      await expectRevert(metis, c, MISBEHAVIOUR, MB(a1, s2.commit(a1), a2, s2.commit(a1)), 'BadVoteSignature(uint256,address)');
      const receipt = await metis.send(c, MISBEHAVIOUR, MB(a1, s2.commit(a1, { signers: [0, 1] }), a2, s2.commit(a2, { signers: [0, 2] })));
      gas('GoatLightClient.submitMisbehaviour (3 validators, 2 + 2 votes)', receipt);
      eq(receipt.logs[0].topics[0], keccakText('Frozen(uint256,bytes32,bytes32)'), 'Frozen');
      eq(big(abi.words(await metis.call(c, 'trustedState()'))[4]), 1n, 'frozen');
      await expectRevert(metis, c, SUBMIT, s2.args(a1), 'ClientFrozen()');
      await expectRevert(metis, c, VERIFY, [e1.hash, e1.number, e1.timestamp, e1.receiptsRoot, '0x'], 'ClientFrozen()');
      await expectRevert(metis, c, MISBEHAVIOUR, MB(a1, s2.commit(a1), a2, s2.commit(a2)), 'ClientFrozen()');
      const e0 = await evmBlock(goat, e1.number - 1);
      await expectRevert(metis, c, ANCESTORS, [[hex(e1.rlp), hex(e0.rlp)]], 'ClientFrozen()');
    });

    await test('PaymentSettlement settles a GOAT payment in a block proven by consensus', async () => {
      const { address: btcClient } = await t.deployRegtestClient(metis, 1000);
      const settlement = await metis.deploy('PaymentSettlement', ['address', 'address', 'uint256', 'uint8', 'uint256'], [btcClient, client, 6, 1, 2345]);
      // An EIP-3009 payment on the GOAT node.
      const token = await goat.deploy('TestStablecoin', ['string', 'string', 'string'], ['USD Coin', 'USDC', '2']);
      const payerKey = KEYS[6];
      const payer = addressOf(payerKey);
      const payee = goat.accounts[8].toLowerCase();
      await goat.send(token, 'mint(address,uint256)', [payer, 10_000_000]);
      const ref = hex(rand32());
      const domain = await goat.call(token, 'DOMAIN_SEPARATOR()');
      const TWA = 'TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)';
      const structHash = keccakHex(abi.encode(['bytes32', 'address', 'address', 'uint256', 'uint256', 'uint256', 'bytes32'],
        [keccakText(TWA), payer, payee, 1_000_000, 0, 4_000_000_000, ref]));
      const auth = signDigest(keccakHex('0x1901' + abi.strip0x(domain) + abi.strip0x(structHash)), payerKey);
      const txReceipt = await goat.send(token, 'transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)',
        [payer, payee, 1_000_000, 0, 4_000_000_000, ref, auth.v, auth.r, auth.s]);
      const e = await evmBlock(goat, Number(big(txReceipt.blockNumber)));
      const all = [];
      for (const h of e.block.transactions) all.push(await goat.rpc('eth_getTransactionReceipt', [h]));
      const entries = all.map((rc, i) => [eth.rlp(eth.quantity(i)), eth.encodeReceipt(rc)]);
      const trie = new eth.Trie(entries);
      eq(hex(trie.rootHash()), e.receiptsRoot, 'receipts root');
      const index = Number(big(txReceipt.transactionIndex));
      // The merchant's signed terms.
      const merchantKey = KEYS[5];
      const terms = [addressOf(merchantKey), ref, 1, payee, token, 1_000_000, 4_000_000_000, ZERO20, ZERO32];
      const TERMS = '(address,bytes32,uint8,bytes,address,uint256,uint64,address,bytes32)';
      const sig = signDigest(await metis.call(settlement, `hashTerms(${TERMS})`, [terms]), merchantKey).sig;
      const SETTLE = `settleGoat(((bytes32,uint256,uint256,bytes32,bytes),bytes[],(${TERMS},bytes,uint256,bytes,uint256)[])[])`;
      const groups = [[[[e.hash, e.number, e.timestamp, e.receiptsRoot, '0x'], trie.proof(entries[index][0]).map(hex), [[terms, sig, index, '0x', 0]]]]];
      // Not proven yet: the store refuses and the settlement bubbles it.
      await expectRevert(metis, settlement, SETTLE, groups, 'UnknownGoatBlock(bytes32)', abi.strip0x(e.hash));
      const b = sim.block(e, { step: 7 });
      await metis.send(client, SUBMIT, sim.args(b));
      sim.accept(b);
      const receipt = await metis.send(settlement, SETTLE, groups);
      gas('PaymentSettlement.settleGoat, signed invoice, block proven by GoatLightClient', receipt);
      const settled = receipt.logs.filter((l) => l.topics[0] === keccakText('InvoiceSettled(bytes32,address,bytes32,uint8,bytes,bytes32,uint256,uint256)'));
      eq(settled.length, 1, 'InvoiceSettled');
      await expectRevert(metis, settlement, SETTLE, groups, 'AlreadySettled(bytes32)');
    });
  }

  return { goatLcSuite };
};
