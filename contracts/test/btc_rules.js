// SPDX-License-Identifier: MIT OR Apache-2.0
//
// BtcLightClient consensus-rule suite: compact header relay (48-byte records), compact proofs
// (80 + 48k bytes), median-time-past, the 2-hour future bound and testnet4's rules
// (20-minute minimum-difficulty exception, BIP94 retarget from the period's first block,
// BIP94 timewarp limit), the latter also on real testnet4 headers (fixtures/testnet4.json:
// heights 0-1, 2005-2020, 143136, 145130-145160). Run with `node contracts/test/run.js rules`.
'use strict';

const crypto = require('crypto');
const abi = require('./lib/abi');
const btc = require('./lib/btc');

const { word } = abi;
const hex = (b) => '0x' + Buffer.from(b).toString('hex');
const rand32 = () => crypto.randomBytes(32);
const big = (h) => BigInt(h);

const REGTEST_BITS = 0x207fffff;
const HARD_BITS = 0x2000ffff; // ~256 hashes a header: a period difficulty above the lax pow limit
const SUBMIT = 'submitHeaders(bytes)';
const SUBMIT_COMPACT = 'submitCompactHeaders(bytes32,bytes)';
const CP_TYPES = ['bytes', 'uint256', 'uint256', 'uint8', 'uint256', ...Array(11).fill('uint32')];
const NETWORK = { Mainnet: 0, Regtest: 1, Testnet4: 2 };

const concat = (hs) => hex(Buffer.concat(hs.map((h) => h.header)));
const compact = (hs) => hex(Buffer.concat(hs.map((h) => btc.compactHeader(h.header))));
const proofChain = (hs) => hex(btc.proofHeaders(hs.map((h) => h.header)));

/** Mines one header on `parent` ({hash, time}) with the given time and bits. */
function next(parent, time, bits, salt = '') {
  const m = btc.mine({ prev: parent.hash, merkleRoot: btc.sha256(Buffer.from(`${salt} ${time} ${parent.hash.toString('hex')}`)), time, bits });
  return { ...m, time, bits };
}

/** Mines headers on `parent` with the given times (one per header) and bits. */
function chainWithTimes(parent, times, bits, salt = '') {
  const out = [];
  let p = parent;
  for (const t of times) {
    p = next(p, t, bits, salt);
    out.push(p);
  }
  return out;
}

async function deploy(chain, { network = NETWORK.Regtest, bits = REGTEST_BITS, time = 1_700_000_000, times, powLimit = btc.REGTEST_POW_LIMIT } = {}) {
  const cp = btc.mine({ prev: rand32(), merkleRoot: rand32(), time, bits });
  const t11 = times || btc.checkpointTimes(time);
  const address = await chain.deploy('BtcLightClient', CP_TYPES, [hex(cp.header), 0, 1, network, powLimit, ...t11]);
  return { address, cp: { hash: cp.hash, time, bits, header: cp.header } };
}

async function run(chain, t) {
  const { test, gas, expectRevert, eq, assert } = t;
  console.log('BtcLightClient (consensus rules: compact relay, MTP, future bound, testnet4)');

  await test('compact batch of 100: <= 50 calldata bytes per header, gas per header printed against the 3,000 goal (regression bound 3,700); same state as 80-byte', async () => {
    const a = await deploy(chain);
    // Same checkpoint header for the second client, so both chains are identical.
    const b = await chain.deploy('BtcLightClient', CP_TYPES, [hex(a.cp.header), 0, 1, NETWORK.Regtest, btc.REGTEST_POW_LIMIT,
      ...btc.checkpointTimes(a.cp.time)]);
    const hs = btc.mineChain(a.cp, 200, REGTEST_BITS, { salt: 1 });
    const data = abi.calldata(SUBMIT_COMPACT, [hex(a.cp.hash), compact(hs.slice(0, 100))]);
    const perHeaderBytes = (data.length - 2) / 2 / 100;
    const r1 = await chain.sendRaw({ from: chain.accounts[0], to: a.address, data });
    const used = gas('BtcLightClient.submitCompactHeaders x100 (48-byte records, all rules)', r1, 100);
    const r2 = await chain.send(a.address, SUBMIT_COMPACT, [hex(hs[99].hash), compact(hs.slice(100))]);
    gas('BtcLightClient.submitCompactHeaders x100 (extension)', r2, 100);
    const r3 = await chain.send(b, SUBMIT, [concat(hs.slice(0, 100))]);
    gas('BtcLightClient.submitHeaders x100 (80-byte, all rules)', r3, 100);
    await chain.send(b, SUBMIT, [concat(hs.slice(100))]);
    console.log(`       compact calldata: ${perHeaderBytes.toFixed(2)} bytes/header (80-byte form: ${(80 + 68 / 100).toFixed(2)})`);
    for (const h of [hs[99], hs[199]]) {
      eq(await chain.call(a.address, 'headerInfo(bytes32)', [hex(h.hash)]), await chain.call(b, 'headerInfo(bytes32)', [hex(h.hash)]), 'headerInfo');
      eq(await chain.call(a.address, 'recentTimes(bytes32)', [hex(h.hash)]), await chain.call(b, 'recentTimes(bytes32)', [hex(h.hash)]), 'recentTimes');
    }
    eq(await chain.call(a.address, 'bestHash()'), hex(hs[199].hash), 'best (compact)');
    eq(await chain.call(b, 'bestHash()'), hex(hs[199].hash), 'best (80-byte)');
    eq(await chain.call(a.address, 'bestChainwork()'), await chain.call(b, 'bestChainwork()'), 'chainwork');
    assert(perHeaderBytes <= 50, `calldata ${perHeaderBytes} B/header`);
    // Goal: 3,000 gas/header. Not reached yet (see the report); guard against regressions.
    if (used / 100 > 3000) console.log(`       NOTE: ${used / 100} gas/header, above the 3,000 goal`);
    assert(used / 100 <= 3700, `gas per header ${used / 100}`);
  });

  await test('compact proofs (80 + 48k bytes) verify; a skipped or altered record is refused', async () => {
    const { address, cp } = await deploy(chain);
    const hs = btc.mineChain(cp, 12, REGTEST_BITS, { salt: 2 });
    await chain.send(address, SUBMIT_COMPACT, [hex(cp.hash), compact(hs)]);
    const ret = abi.words(await chain.call(address, 'verifyHeaderChain(bytes)', [proofChain(hs.slice(3))]));
    eq(ret[0], hex(hs[3].hash), 'block hash');
    eq(big(ret[1]), 4n, 'height');
    eq(big(ret[2]), 9n, 'confirmations');
    await expectRevert(chain, address, 'verifyHeaderChain(bytes)', [proofChain([hs[3], ...hs.slice(5)])], 'UnknownHeader(bytes32)');
    const bad = Buffer.from(abi.strip0x(proofChain(hs.slice(3))), 'hex');
    bad[80 + 48 * 2 + 10] ^= 1; // a Merkle-root byte of the third descendant
    await expectRevert(chain, address, 'verifyHeaderChain(bytes)', [hex(bad)], 'UnknownHeader(bytes32)');
    await expectRevert(chain, address, 'verifyHeaderChain(bytes)', [hex(bad.subarray(0, 80 + 47))], 'BadLength(uint256)');
    await expectRevert(chain, address, 'verifyHeaderChain(bytes)', [concat(hs.slice(10))], 'BadLength(uint256)');
  });

  await test('median-time-past: time must exceed the median of the previous 11, across batches', async () => {
    // Checkpoint times: 11 blocks 600 s apart ending at T; batch 1 adds 4 headers.
    const { address, cp } = await deploy(chain);
    const T = cp.time;
    const first = chainWithTimes(cp, [T + 600, T + 1200, T + 1800, T + 2400], REGTEST_BITS, 'a');
    await chain.send(address, SUBMIT_COMPACT, [hex(cp.hash), compact(first)]);
    const tip = first[3];
    // Window at the tip: T-3600 .. T, T+600 .. T+2400 -> median (6th smallest) = T - 600.
    const median = T - 600;
    eq(big(await chain.call(address, 'medianTimePast(bytes32)', [hex(tip.hash)])), BigInt(median), 'stored MTP');
    const cases = [
      { name: 'equal to the median', time: median, ok: false },
      { name: 'below the median', time: median - 1, ok: false },
      { name: 'one above the median (older than the parent)', time: median + 1, ok: true },
    ];
    for (const c of cases) {
      const h = next(tip, c.time, REGTEST_BITS, c.name);
      for (const [sig, args] of [[SUBMIT_COMPACT, [hex(tip.hash), compact([h])]], [SUBMIT, [concat([h])]]]) {
        if (c.ok) {
          const r = await chain.rpc('eth_call', [{ to: address, data: abi.calldata(sig, args) }, 'latest']);
          eq(r, hex(h.hash), `${c.name} accepted`);
        } else {
          await expectRevert(chain, address, sig, args, 'TimeNotAfterMedian(uint256,uint32,uint32)',
            word(5) + word(c.time) + word(median));
        }
      }
    }
    // Inside a batch: the 3rd header of a batch is checked against times of the batch too.
    const inBatch = chainWithTimes(tip, [T + 3000, T + 3600], REGTEST_BITS, 'b');
    // Window at height 6: T-2400 .. T+3600 -> median T+600.
    const bad = next(inBatch[1], T + 600, REGTEST_BITS, 'c');
    await expectRevert(chain, address, SUBMIT_COMPACT, [hex(tip.hash), compact([...inBatch, bad])],
      'TimeNotAfterMedian(uint256,uint32,uint32)', word(7) + word(T + 600) + word(T + 600));
    const good = next(inBatch[1], T + 601, REGTEST_BITS, 'd');
    await chain.send(address, SUBMIT_COMPACT, [hex(tip.hash), compact([...inBatch, good])]);
  });

  await test('future bound: time <= block.timestamp + 2 hours', async () => {
    const { address, cp } = await deploy(chain);
    const now = Number(big((await chain.rpc('eth_getBlockByNumber', ['latest', false])).timestamp));
    const far = next(cp, now + 7200 + 600, REGTEST_BITS, 'far');
    const data = await chain.revertData(address, SUBMIT_COMPACT, [hex(cp.hash), compact([far])]);
    t.expectError(data, 'TimeTooFarInFuture(uint256,uint32,uint256)');
    eq(abi.strip0x(data).slice(8, 136), abi.strip0x(word(1) + word(now + 7200 + 600)), 'height and time');
    const near = next(cp, now + 3600, REGTEST_BITS, 'near');
    await chain.send(address, SUBMIT_COMPACT, [hex(cp.hash), compact([near])]);
    // The jump (> 2^24 s) stores the past times in full (fallback slots); they read back exactly.
    const times = abi.words(await chain.call(address, 'recentTimes(bytes32)', [hex(near.hash)])).map((w) => Number(big(w)));
    eq(times.join(','), [...btc.checkpointTimes(cp.time).slice(1), now + 3600].join(','), 'recent times');
    const after = next(near, now + 3700, REGTEST_BITS, 'after');
    await chain.send(address, SUBMIT_COMPACT, [hex(near.hash), compact([after])]);
  });

  // ---- testnet4 rules on a lax pow limit (regtest's): min bits 0x207fffff, period bits 0x2000ffff ----
  await test('testnet4: 20-minute minimum-difficulty exception and the period bits outside it', async () => {
    const { address, cp } = await deploy(chain, { network: NETWORK.Testnet4, bits: HARD_BITS });
    eq(big(await chain.call(address, 'minDifficultyBits()')), BigInt(REGTEST_BITS), 'min bits');
    const T = cp.time;
    const rows = [
      { name: 'min bits 20 min after the parent', time: T + 1200, bits: REGTEST_BITS, err: [HARD_BITS, REGTEST_BITS] },
      { name: 'period bits 20 min + 1 s after the parent', time: T + 1201, bits: HARD_BITS, err: [REGTEST_BITS, HARD_BITS] },
      { name: 'period bits within 20 min', time: T + 1200, bits: HARD_BITS },
      { name: 'min bits 20 min + 1 s after the parent', time: T + 1201, bits: REGTEST_BITS },
    ];
    for (const r of rows) {
      const h = next(cp, r.time, r.bits, r.name);
      if (r.err) {
        await expectRevert(chain, address, SUBMIT_COMPACT, [hex(cp.hash), compact([h])], 'BadBits(uint256,uint32,uint32)',
          word(1) + word(r.err[0]) + word(r.err[1]));
      } else {
        eq(await chain.rpc('eth_call', [{ to: address, data: abi.calldata(SUBMIT_COMPACT, [hex(cp.hash), compact([h])]) }, 'latest']),
          hex(h.hash), r.name);
      }
    }
    // After a minimum-difficulty block, a block within 20 minutes carries the PERIOD's bits
    // (Core's walk-back), not its parent's; also across a batch boundary.
    const minBlock = next(cp, T + 1500, REGTEST_BITS, 'min');
    await chain.send(address, SUBMIT_COMPACT, [hex(cp.hash), compact([minBlock])]);
    const wrong = next(minBlock, T + 1600, REGTEST_BITS, 'w');
    await expectRevert(chain, address, SUBMIT_COMPACT, [hex(minBlock.hash), compact([wrong])], 'BadBits(uint256,uint32,uint32)',
      word(2) + word(HARD_BITS) + word(REGTEST_BITS));
    const right = next(minBlock, T + 1600, HARD_BITS, 'r');
    await chain.send(address, SUBMIT_COMPACT, [hex(minBlock.hash), compact([right])]);
    eq(await chain.call(address, 'bestHash()'), hex(right.hash), 'best');
    // Mainnet rules refuse the same minimum-difficulty block.
    const m = await deploy(chain, { network: NETWORK.Mainnet, bits: HARD_BITS });
    const mb = next(m.cp, m.cp.time + 1500, REGTEST_BITS, 'mainnet');
    await expectRevert(chain, m.address, SUBMIT_COMPACT, [hex(m.cp.hash), compact([mb])], 'BadBits(uint256,uint32,uint32)',
      word(1) + word(HARD_BITS) + word(REGTEST_BITS));
  });

  await test('testnet4: BIP94 retarget from the period\'s first block, and the timewarp limit', async () => {
    const { address, cp } = await deploy(chain, { network: NETWORK.Testnet4, bits: HARD_BITS });
    // 2014 headers 600 s apart at the period bits, then block 2015 at minimum difficulty.
    const body = btc.mineChain(cp, 2014, HARD_BITS, { salt: 9 });
    const last = next(body[2013], body[2013].time + 1500, REGTEST_BITS, 'last');
    const period = [...body, last];
    for (let i = 0; i < period.length; i += 500) {
      const parent = i === 0 ? cp : period[i - 1];
      await chain.send(address, SUBMIT_COMPACT, [hex(parent.hash), compact(period.slice(i, i + 500))]);
    }
    eq(big(await chain.call(address, 'bestHeight()')), 2015n, 'height 2015');
    const fromFirst = btc.retarget(HARD_BITS, cp.time, last.time, btc.REGTEST_POW_LIMIT);
    const fromParent = btc.retarget(REGTEST_BITS, cp.time, last.time, btc.REGTEST_POW_LIMIT);
    assert(fromFirst !== fromParent, 'the two rules differ here');
    const probe = next(last, last.time + 600, HARD_BITS === fromFirst ? REGTEST_BITS : HARD_BITS, 'probe');
    await expectRevert(chain, address, SUBMIT_COMPACT, [hex(last.hash), compact([probe])], 'BadBits(uint256,uint32,uint32)',
      word(2016) + word(fromFirst) + word(probe.bits));
    // Timewarp: the first block of the period may be at most 600 s older than its parent.
    const warped = next(last, last.time - 601, fromFirst, 'warp');
    await expectRevert(chain, address, SUBMIT_COMPACT, [hex(last.hash), compact([warped])], 'TimewarpAttack(uint256,uint32,uint32)',
      word(2016) + word(last.time - 601) + word(last.time));
    const edge = next(last, last.time - 600, fromFirst, 'edge');
    await chain.send(address, SUBMIT_COMPACT, [hex(last.hash), compact([edge])]);
    const info = abi.words(await chain.call(address, 'headerInfo(bytes32)', [hex(edge.hash)]));
    eq(big(info[2]), BigInt(fromFirst), 'new period bits');
    eq(big(info[3]), BigInt(last.time - 600), 'new period start');
  });

  // ---- testnet4 rules on REAL testnet4 headers (contracts/test/fixtures/testnet4.json) ----
  const T4 = realTestnet4();
  const MIN_BITS = 0x1d00ffff;

  await test('testnet4 fixture: real headers hash to their ids, meet their targets and link up', async () => {
    for (const h of T4.list) {
      eq(Buffer.from(h.hash).reverse().toString('hex'), h.id, `hash of ${h.height}`);
      assert(btc.leNumber(h.hash) <= btc.decodeCompact(h.bits).target, `pow of ${h.height}`);
      eq(h.time, h.fixture.time, `time of ${h.height}`);
      eq(h.bits, Number(h.fixture.bits), `bits of ${h.height}`);
      const parent = T4.at[h.height - 1];
      if (parent) eq(h.prev.toString('hex'), parent.hash.toString('hex'), `link ${h.height - 1} -> ${h.height}`);
    }
    eq(T4.at[0].id, '00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043', 'genesis');
    eq(T4.at[1].prev.toString('hex'), T4.at[0].hash.toString('hex'), 'genesis -> 1');
  });

  await test('testnet4 (real headers): the retargets at 2016 and 145152 are Core\'s, from the period\'s first block', async () => {
    const { address } = await deployReal(chain, 2016);
    // 2016: the first period (0..2015) was mined in under 3.5 days -> the maximum 4x step.
    eq(big(await chain.call(address, 'computeRetarget(uint32,uint32,uint32)', [MIN_BITS, T4.at[0].time, T4.at[2015].time])),
      BigInt(T4.at[2016].bits), 'bits of 2016');
    eq(T4.at[2016].bits, 0x1c3fffc0, 'real bits of 2016');
    // 145152 = 72 * 2016: BIP94 scales the bits of the period's FIRST block (143136).
    const first = T4.at[143136];
    const last = T4.at[145151];
    eq(big(await chain.call(address, 'computeRetarget(uint32,uint32,uint32)', [first.bits, first.time, last.time])),
      BigInt(T4.at[145152].bits), 'bits of 145152');
    eq(T4.at[145152].bits, 0x190274df, 'real bits of 145152');
    assert(T4.at[145152].bits !== first.bits, 'bits changed at the boundary');
    eq(btc.retarget(first.bits, first.time, last.time, btc.MAINNET_POW_LIMIT), T4.at[145152].bits, 'JS reference');
  });

  await test('testnet4 (real headers): 2017..2020 after the first retarget, 80-byte and compact', async () => {
    const a = await deployReal(chain, 2016);
    const b = await deployReal(chain, 2016);
    const hs = T4.range(2017, 2020);
    await chain.send(a.address, SUBMIT, [concat(hs)]);
    await chain.send(b.address, SUBMIT_COMPACT, [hex(T4.at[2016].hash), compact(hs)]);
    for (const c of [a, b]) {
      eq(await chain.call(c.address, 'bestHash()'), hex(T4.at[2020].hash), 'best');
      eq(big(await chain.call(c.address, 'bestHeight()')), 2020n, 'height');
      const info = abi.words(await chain.call(c.address, 'headerInfo(bytes32)', [hex(T4.at[2020].hash)]));
      eq(big(info[2]), 0x1c3fffc0n, 'period bits');
      eq(big(info[3]), BigInt(T4.at[2016].time), 'period start');
    }
    eq(await chain.call(a.address, 'bestChainwork()'), await chain.call(b.address, 'bestChainwork()'), 'chainwork');
    // The same header 20 min + 1 s after its parent would have to carry the minimum bits.
    const late = btc.withTime(T4.at[2017].header, T4.at[2016].time + 1201);
    await expectRevert(chain, a.address, SUBMIT, [hex(late)], 'BadBits(uint256,uint32,uint32)',
      word(2017) + word(MIN_BITS) + word(0x1c3fffc0));
  });

  await test('testnet4 (real headers): min-difficulty blocks after the 145152 retarget, 80-byte and compact', async () => {
    const hs = T4.range(145153, 145160);
    const kinds = hs.map((h) => (h.bits === MIN_BITS ? 'min' : 'period')).join(',');
    // 145153: 1201 s after its parent -> minimum difficulty; 145156: 6375 s BEFORE its parent,
    // back to the period's bits (0x190274df, set at 145152, not its parent's 0x1d00ffff).
    eq(kinds, 'min,min,min,period,min,min,min,min', 'kinds of blocks');
    eq(hs[0].time - T4.at[145152].time, 1201, 'gap before 145153');
    const a = await deployReal(chain, 145152);
    const b = await deployReal(chain, 145152);
    const c = await deployReal(chain, 145152);
    eq(big(await chain.call(a.address, 'minDifficultyBits()')), BigInt(MIN_BITS), 'min bits');
    await chain.send(a.address, SUBMIT, [concat(hs)]);
    await chain.send(b.address, SUBMIT_COMPACT, [hex(T4.at[145152].hash), compact(hs)]);
    // c: one header a call, so every min-difficulty decision also crosses a batch boundary.
    for (const h of hs) await chain.send(c.address, SUBMIT_COMPACT, [hex(T4.at[h.height - 1].hash), compact([h])]);
    for (const x of [a, b, c]) {
      eq(await chain.call(x.address, 'bestHash()'), hex(T4.at[145160].hash), 'best');
      eq(big(await chain.call(x.address, 'bestHeight()')), 145160n, 'height');
      const info = abi.words(await chain.call(x.address, 'headerInfo(bytes32)', [hex(T4.at[145160].hash)]));
      eq(big(info[2]), 0x190274dfn, 'period bits');
      eq(big(info[3]), BigInt(T4.at[145152].time), 'period start');
      const times = abi.words(await chain.call(x.address, 'recentTimes(bytes32)', [hex(T4.at[145160].hash)])).map((w) => Number(big(w)));
      eq(times.join(','), T4.range(145150, 145160).map((h) => h.time).join(','), 'recent times');
    }
    const cw = await chain.call(a.address, 'bestChainwork()');
    eq(await chain.call(b.address, 'bestChainwork()'), cw, 'chainwork (compact)');
    eq(await chain.call(c.address, 'bestChainwork()'), cw, 'chainwork (one by one)');
    const minWork = btc.work(btc.decodeCompact(MIN_BITS).target);
    const periodWork = btc.work(btc.decodeCompact(0x190274df).target);
    eq(big(cw), 1n + 7n * minWork + periodWork, 'chainwork = checkpoint + 7 min-difficulty + 1 period block');
    // a verifies a compact proof through the real chain.
    const ret = abi.words(await chain.call(a.address, 'verifyHeaderChain(bytes)', [proofChain(hs.slice(3))]));
    eq(ret[0], hex(T4.at[145156].hash), 'proof block');
    eq(big(ret[2]), 5n, 'proof confirmations');
  });

  await test('testnet4 (real headers): altered real headers are refused with the precise error', async () => {
    const { address } = await deployReal(chain, 145152);
    const cp = T4.at[145152];
    const h1 = T4.at[145153];
    // 145153 moved to exactly 20 min after its parent: the period's bits are required.
    const within = btc.withTime(h1.header, cp.time + 1200);
    for (const [sig, args] of [[SUBMIT, [hex(within)]], [SUBMIT_COMPACT, [hex(cp.hash), hex(btc.compactHeader(within))]]]) {
      await expectRevert(chain, address, sig, args, 'BadBits(uint256,uint32,uint32)',
        word(145153) + word(0x190274df) + word(MIN_BITS));
    }
    // 145153 one second later: still a minimum-difficulty block, but its proof of work is gone.
    const later = btc.withTime(h1.header, h1.time + 1);
    await expectRevert(chain, address, SUBMIT, [hex(later)], 'InsufficientWork(uint256,bytes32)',
      word(145153) + abi.strip0x(hex(btc.dsha256(later))));
    // 145156 moved to 20 min + 1 s after 145155: minimum difficulty is required, it has the period's bits.
    const pre = T4.range(145153, 145155);
    const h4 = btc.withTime(T4.at[145156].header, T4.at[145155].time + 1201);
    await expectRevert(chain, address, SUBMIT, [concat(pre) + abi.strip0x(hex(h4))], 'BadBits(uint256,uint32,uint32)',
      word(145156) + word(MIN_BITS) + word(0x190274df));
    await expectRevert(chain, address, SUBMIT_COMPACT, [hex(cp.hash), compact(pre) + abi.strip0x(hex(btc.compactHeader(h4)))],
      'BadBits(uint256,uint32,uint32)', word(145156) + word(MIN_BITS) + word(0x190274df));
    // A real header on the wrong parent: unknown parent (80-byte) / no proof of work (compact).
    await expectRevert(chain, address, SUBMIT, [concat([T4.at[145154]])], 'UnknownParent(bytes32)', hex(h1.hash));
    const wrong = btc.dsha256(btc.expandHeader(btc.compactHeader(T4.at[145154].header), cp.hash));
    await expectRevert(chain, address, SUBMIT_COMPACT, [hex(cp.hash), compact([T4.at[145154]])], 'InsufficientWork(uint256,bytes32)',
      word(145153) + abi.strip0x(hex(wrong)));
    // Nothing was stored.
    eq(await chain.call(address, 'bestHash()'), hex(cp.hash), 'best unchanged');
    // Mainnet rules (same checkpoint and pow limit) refuse the real minimum-difficulty block.
    const m = await deployReal(chain, 145152, NETWORK.Mainnet);
    await expectRevert(chain, m.address, SUBMIT, [concat([h1])], 'BadBits(uint256,uint32,uint32)',
      word(145153) + word(0x190274df) + word(MIN_BITS));
  });
}

/** The real testnet4 headers of contracts/test/fixtures/testnet4.json, parsed. */
function realTestnet4() {
  const doc = require('./fixtures/testnet4.json');
  const at = {};
  const list = doc.headers.map((f) => {
    const h = { ...btc.parseHeader(Buffer.from(f.hex, 'hex')), height: f.height, id: f.hash, fixture: f };
    at[f.height] = h;
    return h;
  });
  const range = (from, to) => {
    const out = [];
    for (let i = from; i <= to; i++) {
      if (!at[i]) throw new Error(`no real testnet4 header at ${i}`);
      out.push(at[i]);
    }
    return out;
  };
  return { at, list, range };
}

/** Deploys a client (Testnet4 rules by default) from the real header at `height` (a multiple
 *  of 2016) with the real times of the 11 blocks ending there. */
async function deployReal(chain, height, network = NETWORK.Testnet4) {
  const T4 = realTestnet4();
  const times = T4.range(height - 10, height).map((h) => h.time);
  const address = await chain.deploy('BtcLightClient', CP_TYPES,
    [hex(T4.at[height].header), height, 1, network, btc.MAINNET_POW_LIMIT, ...times]);
  return { address };
}

module.exports = { run };
