#!/usr/bin/env node
// SPDX-License-Identifier: MIT OR Apache-2.0
//
// End-to-end tests of the gmrelay contracts on throw-away anvil nodes (loopback, free ports):
// a "Metis" node (chain id 1088, Shanghai) for the light client, header store and
// settlement, and a "GOAT" node (chain id 2345) that produces real blocks and receipts.
// Uses the committed artifacts (run `node contracts/build.js` first) and the pinned tools
// in tools/node_modules; no other dependencies.
//
//   node contracts/test/run.js            all suites
//   node contracts/test/run.js btc goat   only the named suites (token, btc, mainnet, rules, goat, settle, goatlc)
'use strict';

const crypto = require('crypto');
const abi = require('./lib/abi');
const btc = require('./lib/btc');
const eth = require('./lib/eth');
const { Chain, signDigest, addressOf, KEYS } = require('./lib/chain');

const { calldata, keccakText, keccakHex, word } = abi;
const hex = (b) => '0x' + Buffer.from(b).toString('hex');
const rand32 = () => crypto.randomBytes(32);

// ------------------------------------------------------------------------------------
// Tiny test framework
// ------------------------------------------------------------------------------------

let passed = 0;
let failed = 0;
const gasTable = [];

async function test(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`  ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`  FAIL ${name}\n       ${(e.stack || String(e)).split('\n').slice(0, 4).join('\n       ')}`);
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error('assertion failed: ' + msg);
}

function eq(a, b, msg) {
  const norm = (x) => (typeof x === 'bigint' ? x.toString() : typeof x === 'string' ? x.toLowerCase() : String(x));
  if (norm(a) !== norm(b)) throw new Error(`${msg}: expected ${norm(b)}, got ${norm(a)}`);
}

/** Asserts revert data starts with the selector of `errorSig` (e.g. "BadBits(uint256,uint32,uint32)"). */
function expectError(data, errorSig, argsHex) {
  const sel = abi.selector(errorSig);
  if (!data || !String(data).startsWith(sel)) {
    throw new Error(`expected ${errorSig} (${sel}), got ${data}`);
  }
  if (argsHex !== undefined) eq(data, sel + abi.strip0x(argsHex), `${errorSig} arguments`);
}

async function expectRevert(chain, to, sig, values, errorSig, argsHex) {
  const data = await chain.revertData(to, sig, values);
  expectError(data, errorSig, argsHex);
}

let currentChain = null;
function gas(label, receipt, per) {
  const used = Number(BigInt(receipt.gasUsed));
  const entry = { label, used, per };
  gasTable.push(entry);
  if (currentChain) {
    // Intrinsic cost (21000 + calldata) for the breakdown, filled in asynchronously.
    entry.pending = currentChain.rpc('eth_getTransactionByHash', [receipt.transactionHash]).then((tx) => {
      const data = Buffer.from(abi.strip0x(tx.input), 'hex');
      let cost = 21000;
      for (const b of data) cost += b ? 16 : 4;
      entry.intrinsic = cost;
      entry.bytes = data.length;
      if (process.env.GAS_PROFILE) return profile(currentChain, receipt.transactionHash, label);
      return undefined;
    });
  }
  return used;
}

const big = (h) => BigInt(h);

/** GAS_PROFILE=1: prints the gas of each opcode kind (and of each call depth) of a transaction. */
async function profile(chain, txHash, label) {
  const trace = await chain.rpc('debug_traceTransaction', [txHash, { disableStorage: true, disableStack: true, disableMemory: true }]);
  const logs = trace.structLogs;
  if (process.env.GAS_TRACE) require('fs').writeFileSync(`${process.env.GAS_TRACE}/${label.replace(/[^A-Za-z0-9]+/g, '_').slice(0, 80)}.json`, JSON.stringify(logs.map((l) => [l.pc, l.op, l.gas, l.gasCost, l.depth])));
  // Exact cost of each step: its gas minus the gas at the next step of the same depth (a
  // call's cost then includes everything its callee spent; the callee's steps are also
  // listed under their own depth).
  const byOp = {};
  const byDepth = {};
  for (let i = 0; i < logs.length; i++) {
    const step = logs[i];
    let j = i + 1;
    while (j < logs.length && logs[j].depth > step.depth) j++;
    const cost = j < logs.length && logs[j].depth === step.depth ? step.gas - logs[j].gas : step.gasCost;
    const deeper = j > i + 1;
    const k = `${step.depth}:${step.op}`;
    byOp[k] = byOp[k] || { count: 0, gas: 0 };
    byOp[k].count++;
    byOp[k].gas += deeper ? 0 : cost; // calls into code: counted in the callee's depth
    byDepth[step.depth] = (byDepth[step.depth] || 0) + (deeper ? 0 : cost);
  }
  const top = Object.entries(byOp).sort((a, b) => b[1].gas - a[1].gas).slice(0, 18)
    .map(([op, v]) => `${op}:${v.gas}/${v.count}`).join(' ');
  console.log(`       profile ${label}: by depth ${JSON.stringify(byDepth)}; ${top}`);
}

// ------------------------------------------------------------------------------------
// TestStablecoin
// ------------------------------------------------------------------------------------

const TWA = 'TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)';
const RWA = 'ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)';

async function authDigest(chain, token, typeString, from, to, value, validAfter, validBefore, nonce) {
  const domain = await chain.call(token, 'DOMAIN_SEPARATOR()');
  const structHash = keccakHex(abi.encode(['bytes32', 'address', 'address', 'uint256', 'uint256', 'uint256', 'bytes32'],
    [keccakText(typeString), from, to, value, validAfter, validBefore, nonce]));
  return keccakHex('0x1901' + abi.strip0x(domain) + abi.strip0x(structHash));
}

async function tokenSuite(chain) {
  console.log('TestStablecoin');
  const [deployer, relayer, stranger] = chain.accounts;
  const token = await chain.deploy('TestStablecoin', ['string', 'string', 'string'], ['USD Coin', 'USDC', '2']);
  const payerKey = KEYS[6];
  const payer = addressOf(payerKey);
  const payee = chain.accounts[3];
  const SIG9 = 'transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)';
  const SIG7 = 'transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)';

  await test('metadata and EIP-712 domain', async () => {
    const nameRet = await chain.call(token, 'name()');
    assert(Buffer.from(abi.strip0x(nameRet).slice(128), 'hex').toString().startsWith('USD Coin'), 'name');
    eq(big(await chain.call(token, 'decimals()')), 6n, 'decimals');
    const expected = keccakHex(abi.encode(['bytes32', 'bytes32', 'bytes32', 'uint256', 'address'], [
      keccakText('EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)'),
      keccakText('USD Coin'), keccakText('2'), 1088, token]));
    eq(await chain.call(token, 'DOMAIN_SEPARATOR()'), expected, 'domain separator');
    eq(await chain.call(token, 'TRANSFER_WITH_AUTHORIZATION_TYPEHASH()'), keccakText(TWA), 'typehash');
  });

  await test('mint is deployer-only', async () => {
    await chain.send(token, 'mint(address,uint256)', [payer, 10_000_000]);
    eq(big(await chain.call(token, 'balanceOf(address)', [payer])), 10_000_000n, 'balance');
    const data = await chain.revertData(token, 'mint(address,uint256)', [stranger, 1], stranger);
    expectError(data, 'NotMinter(address)', word(big(stranger)));
  });

  const now = Math.floor(Date.now() / 1000);
  const nonce = hex(rand32());
  await test('transferWithAuthorization (v, r, s) and replay protection', async () => {
    const digest = await authDigest(chain, token, TWA, payer, payee, 1_000_000, 0, now + 3600, nonce);
    const { v, r, s } = signDigest(digest, payerKey);
    const args = [payer, payee, 1_000_000, 0, now + 3600, nonce, v, r, s];
    const receipt = await chain.send(token, SIG9, args, relayer);
    gas('TestStablecoin.transferWithAuthorization', receipt);
    eq(receipt.logs.length, 2, 'two logs');
    eq(receipt.logs[0].topics[0], keccakText('AuthorizationUsed(address,bytes32)'), 'AuthorizationUsed first');
    eq(receipt.logs[1].topics[0], keccakText('Transfer(address,address,uint256)'), 'then Transfer');
    eq(big(await chain.call(token, 'balanceOf(address)', [payee])), 1_000_000n, 'payee balance');
    eq(big(await chain.call(token, 'authorizationState(address,bytes32)', [payer, nonce])), 1n, 'state');
    await expectRevert(chain, token, SIG9, args, 'AuthorizationAlreadyUsed(address,bytes32)');
  });

  await test('bytes-signature overload, window and malleability checks', async () => {
    const n2 = hex(rand32());
    const digest = await authDigest(chain, token, TWA, payer, payee, 5, 0, now + 3600, n2);
    const { v, r, s, sig } = signDigest(digest, payerKey);
    // High-s twin of the same signature.
    const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const highS = '0x' + (N - big(s)).toString(16).padStart(64, '0');
    const flippedV = v === 27 ? 28 : 27;
    await expectRevert(chain, token, SIG9, [payer, payee, 5, 0, now + 3600, n2, flippedV, r, highS], 'SignatureMalleable()');
    await expectRevert(chain, token, SIG7, [payer, payee, 5, 0, now + 3600, n2, sig.slice(0, -2)],
      'InvalidSignatureLength(uint256)');
    await expectRevert(chain, token, SIG7, [payer, payee, 6, 0, now + 3600, n2, sig], 'InvalidSignature(address)');
    await expectRevert(chain, token, SIG7, [payer, payee, 5, now + 3000, now + 3600, n2, sig],
      'AuthorizationNotYetValid(uint256,uint256)');
    await expectRevert(chain, token, SIG7, [payer, payee, 5, 0, 1, n2, sig], 'AuthorizationExpired(uint256,uint256)');
    await chain.send(token, SIG7, [payer, payee, 5, 0, now + 3600, n2, sig], relayer);
  });

  await test('receiveWithAuthorization requires the payee as caller', async () => {
    const n3 = hex(rand32());
    const digest = await authDigest(chain, token, RWA, payer, payee, 7, 0, now + 3600, n3);
    const { v, r, s } = signDigest(digest, payerKey);
    const sig = 'receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)';
    const args = [payer, payee, 7, 0, now + 3600, n3, v, r, s];
    const data = await chain.revertData(token, sig, args, relayer);
    expectError(data, 'CallerNotPayee(address,address)');
    await chain.send(token, sig, args, payee);
  });

  await test('cancelAuthorization', async () => {
    const n4 = hex(rand32());
    const structHash = keccakHex(abi.encode(['bytes32', 'address', 'bytes32'],
      [keccakText('CancelAuthorization(address authorizer,bytes32 nonce)'), payer, n4]));
    const domain = await chain.call(token, 'DOMAIN_SEPARATOR()');
    const { v, r, s } = signDigest(keccakHex('0x1901' + abi.strip0x(domain) + abi.strip0x(structHash)), payerKey);
    const receipt = await chain.send(token, 'cancelAuthorization(address,bytes32,uint8,bytes32,bytes32)', [payer, n4, v, r, s]);
    eq(receipt.logs[0].topics[0], keccakText('AuthorizationCanceled(address,bytes32)'), 'event');
    const digest = await authDigest(chain, token, TWA, payer, payee, 1, 0, now + 3600, n4);
    const t = signDigest(digest, payerKey);
    await expectRevert(chain, token, SIG9, [payer, payee, 1, 0, now + 3600, n4, t.v, t.r, t.s],
      'AuthorizationAlreadyUsed(address,bytes32)');
  });
  return token;
}

// ------------------------------------------------------------------------------------
// BtcLightClient (regtest rules)
// ------------------------------------------------------------------------------------

const REGTEST_BITS = 0x207fffff;
const SUBMIT = 'submitHeaders(bytes)';
const VERIFY = 'verifyTx((bytes,uint256,bytes,bytes32,bytes,bytes),uint256)';

async function deployRegtestClient(chain, height = 0) {
  const cp = btc.mine({ prev: rand32(), merkleRoot: rand32(), time: 1_700_000_000, bits: REGTEST_BITS });
  const chainwork = btc.work(btc.REGTEST_POW_LIMIT) * BigInt(height + 1);
  const address = await chain.deploy('BtcLightClient', [...CP_TYPES],
    [hex(cp.header), height, chainwork, 1, btc.REGTEST_POW_LIMIT, ...btc.checkpointTimes(1_700_000_000)]);
  return { address, checkpoint: { hash: cp.hash, time: 1_700_000_000, height } };
}

const concat = (hs) => hex(Buffer.concat(hs.map((h) => h.header)));
/** Compact submission calldata arguments: [parent hash, 48-byte records]. */
const compactArgs = (parent, hs) => [hex(parent), hex(Buffer.concat(hs.map((h) => btc.compactHeader(h.header))))];
/** Proof header chain (80 + 48k bytes): the block's header, then its descendants compact. */
const proofChain = (hs) => hex(btc.proofHeaders(hs.map((h) => h.header)));
/** Constructor types: header, height, chainwork, network, pow limit, uint32[11] checkpoint times. */
const CP_TYPES = ['bytes', 'uint256', 'uint256', 'uint8', 'uint256', ...Array(11).fill('uint32')];
const SUBMIT_COMPACT = 'submitCompactHeaders(bytes32,bytes)';

async function bestOf(chain, client) {
  return { hash: await chain.call(client, 'bestHash()'), height: Number(big(await chain.call(client, 'bestHeight()'))) };
}

/** Builds a block with `count` transactions (ours at `index`) and returns its proof parts. */
function buildBlock(rawTx, index, count, height) {
  const coinbase = btc.coinbaseTx(height, 'gmrelay');
  const txids = [btc.dsha256(coinbase)];
  for (let i = 1; i < count; i++) txids.push(i === index ? btc.dsha256(rawTx) : rand32());
  return {
    txids,
    merkleRoot: btc.merkleRoot(txids),
    branch: btc.merkleBranch(txids, index),
    coinbasePreimage: btc.sha256(coinbase),
    coinbaseBranch: btc.merkleBranch(txids, 0),
  };
}

function paymentTx(payeeScript, value, invoiceId, { opReturn = true, extraOpReturn = null } = {}) {
  const outputs = [{ value: BigInt(value), script: payeeScript }];
  if (extraOpReturn) outputs.push({ value: 0n, script: Buffer.concat([Buffer.from('6a20', 'hex'), extraOpReturn]) });
  if (opReturn) outputs.push({ value: 0n, script: Buffer.concat([Buffer.from('6a20', 'hex'), Buffer.from(abi.strip0x(invoiceId), 'hex')]) });
  outputs.push({ value: 123_456n, script: Buffer.from('5120' + 'ab'.repeat(32), 'hex') });
  return btc.serializeTx({ inputs: [{ txid: rand32(), vout: 1, script: Buffer.alloc(0) }], outputs });
}

async function btcSuite(chain) {
  console.log('BtcLightClient (regtest)');
  const { address: client, checkpoint } = await deployRegtestClient(chain);
  let main = [];

  await test('batch of 100 headers: stored tip, best chain, gas <= 10k/header', async () => {
    main = btc.mineChain(checkpoint, 100, REGTEST_BITS);
    const receipt = await chain.sendRaw({ from: chain.accounts[0], to: client, data: calldata(SUBMIT, [concat(main)]) });
    const used = gas('BtcLightClient.submitHeaders x100 (first batch)', receipt, 100);
    assert(used / 100 <= 10_000, `gas per header ${used / 100}`);
    const best = await bestOf(chain, client);
    eq(best.hash, hex(main[99].hash), 'best hash');
    eq(best.height, 100, 'best height');
    eq(big(await chain.call(client, 'isOnBestChain(bytes32)', [hex(main[99].hash)])), 1n, 'on best chain');
  });

  await test('second batch of 100 extends the tip', async () => {
    const more = btc.mineChain({ hash: main[99].hash, time: main[99].time }, 100, REGTEST_BITS);
    const receipt = await chain.send(client, SUBMIT, [concat(more)]);
    const used = gas('BtcLightClient.submitHeaders x100 (extension)', receipt, 100);
    assert(used / 100 <= 10_000, `gas per header ${used / 100}`);
    main = main.concat(more);
    eq((await bestOf(chain, client)).height, 200, 'height');
    eq(await chain.call(client, 'storedBestAt(uint256)', [100]), hex(main[99].hash), 'index at 100');
    eq(big(await chain.call(client, 'confirmationsOf(bytes32)', [hex(main[99].hash)])), 101n, 'confirmations');
  });

  await test('rejections: length, unknown parent, link, bits, work, duplicate', async () => {
    const tip = { hash: main[199].hash, time: main[199].time };
    const next = btc.mineChain(tip, 3, REGTEST_BITS, { salt: 7 });
    await expectRevert(chain, client, SUBMIT, ['0x' + '00'.repeat(79)], 'BadLength(uint256)');
    await expectRevert(chain, client, SUBMIT, ['0x'], 'BadLength(uint256)');
    const orphan = btc.mineChain({ hash: rand32(), time: tip.time }, 1, REGTEST_BITS);
    await expectRevert(chain, client, SUBMIT, [concat(orphan)], 'UnknownParent(bytes32)');
    await expectRevert(chain, client, SUBMIT, [concat([next[0], next[2]])], 'BrokenLink(uint256)', word(202));
    const badBits = btc.mine({ prev: tip.hash, merkleRoot: rand32(), time: tip.time + 600, bits: 0x207ffffe });
    await expectRevert(chain, client, SUBMIT, [hex(badBits.header)], 'BadBits(uint256,uint32,uint32)',
      word(201) + word(REGTEST_BITS) + word(0x207ffffe));
    const bad = btc.mineBad({ prev: tip.hash, merkleRoot: rand32(), time: tip.time + 600, bits: REGTEST_BITS });
    await expectRevert(chain, client, SUBMIT, [hex(bad.header)], 'InsufficientWork(uint256,bytes32)',
      word(201) + abi.strip0x(hex(bad.hash)));
    await chain.send(client, SUBMIT, [concat(next)]);
    await expectRevert(chain, client, SUBMIT, [concat(next)], 'HeaderAlreadyStored(bytes32)');
    main = main.concat(next);
  });

  await test('reorg to a heavier fork from a stored header, and back', async () => {
    // main: checkpoint .. 203 (tips stored at 100, 200, 203). Fork from 100 to 205.
    const fork = btc.mineChain({ hash: main[99].hash, time: main[99].time }, 105, REGTEST_BITS, { salt: 99 });
    const receipt = await chain.send(client, SUBMIT, [concat(fork)]);
    gas('BtcLightClient.submitHeaders x105 (reorg from a stored header 103 below the tip)', receipt, 105);
    const reorgTopic = keccakText('Reorg(bytes32,bytes32,uint256)');
    const log = receipt.logs.find((l) => l.topics[0] === reorgTopic);
    assert(log, 'Reorg event');
    eq(big(log.data), 100n, 'ancestor height');
    eq((await bestOf(chain, client)).hash, hex(fork[104].hash), 'new best');
    eq(big(await chain.call(client, 'isOnBestChain(bytes32)', [hex(main[199].hash)])), 0n, 'old 200 off');
    eq(big(await chain.call(client, 'isOnBestChain(bytes32)', [hex(main[202].hash)])), 0n, 'old 203 off');
    eq(await chain.call(client, 'storedBestAt(uint256)', [203]), '0x' + '00'.repeat(32), 'stale index cleared');
    eq(big(await chain.call(client, 'isOnBestChain(bytes32)', [hex(main[99].hash)])), 1n, 'common 100 stays');
    // Extend the old branch from its stored tip (203) to 207: heavier again.
    const back = btc.mineChain({ hash: main[202].hash, time: main[202].time }, 4, REGTEST_BITS, { salt: 5 });
    await chain.send(client, SUBMIT, [concat(back)]);
    eq((await bestOf(chain, client)).hash, hex(back[3].hash), 'back to main');
    eq(big(await chain.call(client, 'isOnBestChain(bytes32)', [hex(main[199].hash)])), 1n, 'old 200 back on');
    eq(big(await chain.call(client, 'isOnBestChain(bytes32)', [hex(fork[104].hash)])), 0n, 'fork tip off');
    eq(await chain.call(client, 'storedBestAt(uint256)', [205]), '0x' + '00'.repeat(32), 'fork index cleared');
    main = main.concat(back);
  });

  await test('re-validating through the best tip keeps its stored ancestors', async () => {
    // Resubmit from the stored header at 100 through the tip (207) to 209.
    const extra = btc.mineChain({ hash: main[206].hash, time: main[206].time }, 2, REGTEST_BITS, { salt: 11 });
    const through = main.slice(100, 207).concat(extra);
    const receipt = await chain.send(client, SUBMIT, [concat(through)]);
    assert(!receipt.logs.some((l) => l.topics[0] === keccakText('Reorg(bytes32,bytes32,uint256)')), 'no reorg');
    eq(big(await chain.call(client, 'isOnBestChain(bytes32)', [hex(main[199].hash)])), 1n, '200 stays');
    eq(big(await chain.call(client, 'isOnBestChain(bytes32)', [hex(main[206].hash)])), 1n, '207 stays');
    main = main.concat(extra);
  });

  // ---- inclusion proofs ----
  const invoiceId = hex(rand32());
  const payee = Buffer.from('0014' + '22'.repeat(20), 'hex');
  const rawTx = paymentTx(payee, 50_000, invoiceId);
  const txIndex = 1234;
  const blk = buildBlock(rawTx, txIndex, 2500, 210);
  let block;
  let after;
  await test('verifyTx: valid proof with 6 confirmations', async () => {
    const tip = main[main.length - 1];
    block = btc.mine({ prev: tip.hash, merkleRoot: blk.merkleRoot, time: tip.time + 600, bits: REGTEST_BITS });
    block.time = tip.time + 600;
    after = btc.mineChain(block, 5, REGTEST_BITS, { salt: 3 });
    await chain.send(client, SUBMIT, [concat([block, ...after])]);
    const proof = [hex(rawTx), txIndex, hex(blk.branch), hex(blk.coinbasePreimage), hex(blk.coinbaseBranch), proofChain([block, ...after])];
    const ret = abi.words(await chain.call(client, VERIFY, [proof, 6]));
    eq(ret[0], hex(btc.dsha256(rawTx)), 'txid');
    eq(ret[1], hex(block.hash), 'block hash');
    eq(big(ret[2]), 210n, 'height');
    eq(big(ret[3]), 6n, 'confirmations');
    await expectRevert(chain, client, VERIFY, [proof, 7], 'InsufficientConfirmations(bytes32,uint256,uint256)');
  });

  const proofOf = (over = {}) => {
    const p = { rawTx: hex(rawTx), txIndex, branch: hex(blk.branch), cbPre: hex(blk.coinbasePreimage),
      cbBranch: hex(blk.coinbaseBranch), headers: proofChain([block, ...after]), ...over };
    return [[p.rawTx, p.txIndex, p.branch, p.cbPre, p.cbBranch, p.headers], 1];
  };

  await test('verifyTx rejections: 64-byte tx, depth, index, root, coinbase, chain', async () => {
    await expectRevert(chain, client, VERIFY, proofOf({ rawTx: hex(Buffer.alloc(64, 1)) }), 'SixtyFourByteTransaction()');
    await expectRevert(chain, client, VERIFY, proofOf({ cbBranch: hex(blk.coinbaseBranch.subarray(32)) }),
      'MerkleDepthMismatch(uint256,uint256)');
    await expectRevert(chain, client, VERIFY, proofOf({ branch: hex(blk.branch.subarray(1)) }), 'BadMerkleProofLength(uint256)');
    await expectRevert(chain, client, VERIFY, proofOf({ txIndex: txIndex + 4096 }), 'TxIndexOutOfRange(uint256,uint256)');
    await expectRevert(chain, client, VERIFY, proofOf({ txIndex: txIndex + 1 }), 'MerkleRootMismatch(bytes32,bytes32)');
    await expectRevert(chain, client, VERIFY, proofOf({ cbPre: hex(rand32()) }), 'CoinbaseProofMismatch(bytes32,bytes32)');
    // A compact record skipped: the rebuilt chain reaches an unknown hash.
    await expectRevert(chain, client, VERIFY, proofOf({ headers: proofChain([block, ...after.slice(1)]) }), 'UnknownHeader(bytes32)');
    await expectRevert(chain, client, VERIFY, proofOf({ headers: proofChain([block, after[0]]) }), 'UnknownHeader(bytes32)');
    await expectRevert(chain, client, VERIFY, proofOf({ headers: concat([block, after[0]]) }), 'BadLength(uint256)');
  });

  await test('CVE-2017-12842: a forged leaf under a 64-byte tx fails the coinbase depth', async () => {
    // The attacker gets a 64-byte "transaction" X = L || dsha256(fakeTx) into a block, then proves
    // fakeTx one level below the leaves, with X's halves as the extra Merkle step.
    const fakeTx = crypto.randomBytes(100);
    const X = Buffer.concat([rand32(), btc.dsha256(fakeTx)]);
    // A well-formed 64-byte coinbase: version, 1 input (null prevout, 4-byte script), 1 output, locktime.
    const cb = btc.serializeTx({ version: 1, inputs: [{ txid: Buffer.alloc(32), vout: 0xffffffff, script: Buffer.from('03d90000', 'hex'),
      sequence: 0xffffffff }], outputs: [{ value: 1n, script: Buffer.alloc(0) }] });
    eq(cb.length, 64, 'coinbase length');
    const txids = [btc.dsha256(cb), btc.dsha256(X), rand32(), rand32()];
    const root = btc.merkleRoot(txids);
    const forged = Buffer.concat([X.subarray(0, 32), btc.merkleBranch(txids, 1)]);
    // Sanity: the forged branch does reach the real root (the attack is real without the depth check).
    let node = btc.dsha256(fakeTx);
    for (let l = 0, idx = 3; l < 3; l++, idx >>= 1) {
      const sib = forged.subarray(32 * l, 32 * l + 32);
      node = btc.dsha256(idx & 1 ? Buffer.concat([sib, node]) : Buffer.concat([node, sib]));
    }
    eq(hex(node), hex(root), 'forged branch reaches the root');
    const tip = after[4];
    const b = btc.mine({ prev: tip.hash, merkleRoot: root, time: tip.time + 600, bits: REGTEST_BITS });
    await chain.send(client, SUBMIT, [hex(b.header)]);
    // (a) with the real coinbase proof (depth 2) the depth differs;
    await expectRevert(chain, client, VERIFY, [[hex(fakeTx), 3, hex(forged), hex(btc.sha256(cb)),
      hex(btc.merkleBranch(txids, 0)), hex(b.header)], 1], 'MerkleDepthMismatch(uint256,uint256)', word(3) + word(2));
    // (b) a depth-3 coinbase proof would need sha256(preimage) == the coinbase's left half.
    const cbDeeper = Buffer.concat([cb.subarray(32), btc.merkleBranch(txids, 0)]);
    await expectRevert(chain, client, VERIFY, [[hex(fakeTx), 3, hex(forged), hex(rand32()),
      hex(cbDeeper), hex(b.header)], 1], 'CoinbaseProofMismatch(bytes32,bytes32)');
    // (c) X itself is refused for its length.
    await expectRevert(chain, client, VERIFY, [[hex(X), 1, hex(btc.merkleBranch(txids, 1)), hex(btc.sha256(cb)),
      hex(btc.merkleBranch(txids, 0)), hex(b.header)], 1], 'SixtyFourByteTransaction()');
  });

  await test('CVE-2012-2459: proofs into padding are refused, the real last tx is accepted', async () => {
    // 5 transactions: index 4 is the last real one; index 5 is its duplicate (padding).
    const last = paymentTx(payee, 1, invoiceId);
    const cb = btc.coinbaseTx(218);
    const txids = [btc.dsha256(cb), rand32(), rand32(), rand32(), btc.dsha256(last)];
    const root = btc.merkleRoot(txids);
    const tip = await bestOf(chain, client);
    const tipTime = 1_700_000_000 + 600 * 300;
    const b = btc.mine({ prev: Buffer.from(abi.strip0x(tip.hash), 'hex'), merkleRoot: root, time: tipTime, bits: REGTEST_BITS });
    await chain.send(client, SUBMIT, [hex(b.header)]);
    const ok = [[hex(last), 4, hex(btc.merkleBranch(txids, 4)), hex(btc.sha256(cb)), hex(btc.merkleBranch(txids, 0)), hex(b.header)], 1];
    await chain.call(client, VERIFY, ok);
    // Same tx at phantom index 5: sibling at level 0 is the tx itself.
    const phantom = [[hex(last), 5, hex(btc.merkleBranch(txids, 4)), hex(btc.sha256(cb)), hex(btc.merkleBranch(txids, 0)), hex(b.header)], 1];
    await expectRevert(chain, client, VERIFY, phantom, 'DuplicateMerkleNode(uint256)', word(0));
  });

  await test('batches are capped at MAX_BATCH_HEADERS = 500 (BatchTooLarge), so proofs stay <= 501 headers', async () => {
    // Review finding 2: headers inside a batch never become proof anchors, so a front-runner's
    // huge batch used to force huge proofs (beyond ~1,600 headers a proof exceeds tx size limits).
    const { address: c2, checkpoint: cp2 } = await deployRegtestClient(chain);
    eq(big(await chain.call(c2, 'MAX_BATCH_HEADERS()')), 500n, 'constant');
    const hs = btc.mineChain(cp2, 501, REGTEST_BITS, { salt: 21 });
    await expectRevert(chain, c2, SUBMIT, [concat(hs)], 'BatchTooLarge(uint256,uint256)', word(501) + word(500));
    const receipt = await chain.send(c2, SUBMIT, [concat(hs.slice(0, 500))]);
    gas('BtcLightClient.submitHeaders x500 (largest batch)', receipt, 500);
    // The deepest block of the batch is provable with 500 headers up to the batch tip.
    const ret = abi.words(await chain.call(c2, 'verifyHeaderChain(bytes)', [proofChain(hs.slice(0, 500))]));
    eq(ret[0], hex(hs[0].hash), 'block hash');
    eq(big(ret[1]), 1n, 'height');
    eq(big(ret[2]), 500n, 'confirmations');
    // Intermediate headers are still not anchors (documented), and the 501st header extends the tip.
    await expectRevert(chain, c2, 'verifyHeaderChain(bytes)', [proofChain(hs.slice(0, 10))], 'UnknownHeader(bytes32)');
    await chain.send(c2, SUBMIT, [concat(hs.slice(500))]);
    eq((await bestOf(chain, c2)).height, 501, 'height 501');
  });

  await test('reorg through a stored best tip keeps it indexed (batch links to the highest indexed header)', async () => {
    // Review finding 3: base -> T1 (batch a) -> T2 (batch b, best). A heavier batch anchored at
    // base re-validates a through T1 and 3 headers of b, then forks. T1 stays an ancestor of the
    // new best; it used to lose its _bestAt entry (the batch linked to base, not to T1).
    const { address: c3, checkpoint: cp3 } = await deployRegtestClient(chain);
    const baseBatch = btc.mineChain(cp3, 20, REGTEST_BITS, { salt: 30 });
    await chain.send(c3, SUBMIT, [concat(baseBatch)]);
    const base = baseBatch[19];
    const a = btc.mineChain(base, 10, REGTEST_BITS, { salt: 31 });
    await chain.send(c3, SUBMIT, [concat(a)]);
    const b = btc.mineChain(a[9], 10, REGTEST_BITS, { salt: 32 });
    await chain.send(c3, SUBMIT, [concat(b)]);
    const onBest = async (h) => big(await chain.call(c3, 'isOnBestChain(bytes32)', [hex(h.hash)]));
    eq(await onBest(a[9]), 1n, 'T1 indexed before');
    const fork = btc.mineChain(b[2], 12, REGTEST_BITS, { salt: 33 });
    const receipt = await chain.send(c3, SUBMIT, [concat([...a, ...b.slice(0, 3), ...fork])]);
    gas('BtcLightClient.submitHeaders x25 (reorg, re-validating 13 best-chain headers)', receipt, 25);
    eq((await bestOf(chain, c3)).hash, hex(fork[11].hash), 'fork tip is the best');
    const log = receipt.logs.find((l) => l.topics[0] === keccakText('Reorg(bytes32,bytes32,uint256)'));
    assert(log, 'Reorg event');
    eq(big(log.data), 30n, 'common ancestor is T1 (height 30)');
    eq(await onBest(a[9]), 1n, 'T1 still indexed');
    eq(await chain.call(c3, 'storedBestAt(uint256)', [30]), hex(a[9].hash), 'storedBestAt(30)');
    eq(await onBest(base), 1n, 'base still indexed');
    eq(await onBest(b[9]), 0n, 'T2 dropped');
    eq(await chain.call(c3, 'storedBestAt(uint256)', [40]), '0x' + '00'.repeat(32), 'stale entry at 40 cleared');
    const info = abi.words(await chain.call(c3, 'headerInfo(bytes32)', [hex(fork[11].hash)]));
    eq(info[5], hex(a[9].hash), 'new tip links to T1');
    // A proof anchored at T1 works (it was refused with NotOnBestChain before).
    const ret = abi.words(await chain.call(c3, 'verifyHeaderChain(bytes)', [proofChain(a.slice(5))]));
    eq(big(ret[1]), 26n, 'height of a[5]');
    eq(big(ret[2]), 45n + 1n - 26n, 'confirmations');
  });

  await test('verifyTx gas (proof of 6 headers / stored block)', async () => {
    const proof = proofOf();
    proof[1] = 6;
    const est = await chain.rpc('eth_estimateGas', [{ to: client, data: calldata(VERIFY, proof) }]);
    gasTable.push({ label: 'BtcLightClient.verifyTx (2500 txs, 6 headers), as a tx', used: Number(big(est)) });
  });
  return client;
}

// ------------------------------------------------------------------------------------
// BtcLightClient (mainnet rules)
// ------------------------------------------------------------------------------------

const GENESIS = '0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c';
const BLOCK1 = '010000006fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000982051fd1e4ba744bbbe680e1fee14677ba1a3c3540bf7b1cdb606e857233e0e61bc6649ffff001d01e36299';
const BLOCK2 = '010000004860eb18bf1b1620e37e9490fc8a427514416fd75159ab86688e9a8300000000d5fdcc541e25de1c7a5addedf24858b8bb665c9f36ef744ee42c316022c90f9bb0bc6649ffff001d08d2bd61';

async function mainnetSuite(chain) {
  console.log('BtcLightClient (mainnet rules)');
  let client;
  await test('genesis checkpoint and real mainnet blocks 1-2', async () => {
    client = await chain.deploy('BtcLightClient', CP_TYPES,
      ['0x' + GENESIS, 0, 0x100010001n, 0, btc.MAINNET_POW_LIMIT, ...Array(11).fill(1231006505)]);
    eq(await chain.call(client, 'checkpointHash()'), '0x6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000', 'genesis hash');
    await chain.send(client, SUBMIT, ['0x' + BLOCK1 + BLOCK2]);
    eq(big(await chain.call(client, 'bestHeight()')), 2n, 'height 2');
    eq(big(await chain.call(client, 'bestChainwork()')), 0x300030003n, 'chainwork');
  });

  await test('checkpoint must sit on a retarget boundary', async () => {
    try {
      await chain.deploy('BtcLightClient', CP_TYPES,
        ['0x' + GENESIS, 5, 1, 0, btc.MAINNET_POW_LIMIT, ...Array(11).fill(1231006505)]);
      throw new Error('deployed');
    } catch (e) {
      expectError(e.data, 'CheckpointNotOnBoundary(uint256)');
    }
  });

  await test('computeRetarget matches Bitcoin Core vectors', async () => {
    const cases = [
      [0x1d00ffff, 1261130161, 1262152739, 0x1d00d86a], // get_next_work
      [0x1d00ffff, 1231006505, 1233061996, 0x1d00ffff], // pow limit
      [0x1c05a3f4, 1279008237, 1279297671, 0x1c0168fd], // lower limit of the actual timespan
      [0x1c387f6f, 1263163443, 1269211443, 0x1d00e1fd], // upper limit of the actual timespan
    ];
    for (const [bits, first, last, expected] of cases) {
      const got = Number(big(await chain.call(client, 'computeRetarget(uint32,uint32,uint32)', [bits, first, last])));
      eq(got.toString(16), expected.toString(16), `retarget ${bits.toString(16)}`);
      eq(btc.retarget(bits, first, last, btc.MAINNET_POW_LIMIT).toString(16), expected.toString(16), 'JS reference');
    }
    // Random agreement with the JS reference, including the sign-bit case of GetCompact.
    for (let i = 0; i < 40; i++) {
      const bits = (0x17 + (i % 6)) * 0x1000000 + 0x008000 + Math.floor(Math.random() * 0x7f0000);
      const first = 1_600_000_000;
      const last = first + 200_000 + Math.floor(Math.random() * 5_000_000);
      const got = Number(big(await chain.call(client, 'computeRetarget(uint32,uint32,uint32)', [bits, first, last])));
      eq(got, btc.retarget(bits, first, last, btc.MAINNET_POW_LIMIT), `random retarget ${bits.toString(16)}`);
    }
  });

  await test('retarget at height 2016 is enforced (mined chain, wrapping arithmetic as Core)', async () => {
    // Mainnet rules with the regtest pow limit so that 2016 blocks can be mined in JS.
    const cp = btc.mine({ prev: rand32(), merkleRoot: rand32(), time: 1_700_000_000, bits: REGTEST_BITS });
    const c2 = await chain.deploy('BtcLightClient', CP_TYPES,
      [hex(cp.header), 0, 2, 0, btc.REGTEST_POW_LIMIT, ...btc.checkpointTimes(1_700_000_000, 1)]);
    const chainHeaders = btc.mineChain({ hash: cp.hash, time: 1_700_000_000 }, 2015, REGTEST_BITS, { spacing: 1 });
    for (let i = 0; i < 2015; i += 500) {
      await chain.send(c2, SUBMIT, [concat(chainHeaders.slice(i, i + 500))]);
    }
    const parent = chainHeaders[2014];
    // Choose the easiest reachable next target by adjusting the parent's time... the parent is fixed,
    // so pick from what Core computes: expected bits for this period.
    const expected = btc.retarget(REGTEST_BITS, 1_700_000_000, parent.time, btc.REGTEST_POW_LIMIT);
    const onchain = Number(big(await chain.call(c2, 'computeRetarget(uint32,uint32,uint32)', [REGTEST_BITS, 1_700_000_000, parent.time])));
    eq(onchain, expected, 'on-chain retarget');
    const wrong = btc.mine({ prev: parent.hash, merkleRoot: rand32(), time: parent.time + 1, bits: REGTEST_BITS });
    await expectRevert(chain, c2, SUBMIT, [hex(wrong.header)], 'BadBits(uint256,uint32,uint32)',
      word(2016) + word(expected) + word(REGTEST_BITS));
    const target = btc.decodeCompact(expected).target;
    const tries = Number((1n << 256n) / (target + 1n));
    if (tries > 4_000_000) {
      console.log(`       (skipping mining the boundary header: ~${tries} hashes)`);
      return;
    }
    const good = btc.mine({ prev: parent.hash, merkleRoot: rand32(), time: parent.time + 1, bits: expected });
    await chain.send(c2, SUBMIT, [hex(good.header)]);
    eq(big(await chain.call(c2, 'bestHeight()')), 2016n, 'height 2016');
    const info = abi.words(await chain.call(c2, 'headerInfo(bytes32)', [hex(good.hash)]));
    eq(big(info[3]), BigInt(parent.time + 1), 'new period start');
  });
}

// ------------------------------------------------------------------------------------
// GoatHeaderStore, PaymentSettlement, AccessPass (contracts/test/settle.js)
// ------------------------------------------------------------------------------------

const { goatSuite, settleSuite } = require('./settle')({
  test, assert, eq, expectRevert, expectError, gas, deployRegtestClient, REGTEST_BITS, SUBMIT,
});

// ------------------------------------------------------------------------------------
// GoatLightClient (contracts/test/goat_lc.js)
// ------------------------------------------------------------------------------------

const { goatLcSuite } = require('./goat_lc')({ test, assert, eq, expectRevert, expectError, gas, deployRegtestClient });

// ------------------------------------------------------------------------------------

async function main() {
  const only = process.argv.slice(2);
  const want = (s) => only.length === 0 || only.includes(s);
  const metis = await Chain.start({ chainId: 1088, hardfork: 'shanghai' });
  currentChain = metis;
  let goat = null;
  try {
    if (want('token')) await tokenSuite(metis);
    if (want('btc')) await btcSuite(metis);
    if (want('mainnet')) await mainnetSuite(metis);
    if (want('rules')) await require('./btc_rules').run(metis, { test, gas, expectRevert, expectError, eq, assert });
    if (want('goat') || want('settle') || want('goatlc')) goat = await Chain.start({ chainId: 2345, hardfork: 'prague' });
    if (want('goat')) await goatSuite(metis, goat);
    if (want('settle')) await settleSuite(metis, goat);
    if (want('goatlc')) await goatLcSuite(metis, goat);
  } catch (e) {
    failed++;
    console.log('FATAL', e.stack || e);
  } finally {
    await Promise.allSettled(gasTable.map((g) => g.pending).filter(Boolean));
    metis.stop();
    if (goat) goat.stop();
  }
  if (gasTable.length) {
    console.log('\nGas (whole transaction):');
    for (const g of gasTable) {
      if (g.pending) await g.pending.catch(() => {});
      const split = g.intrinsic ? `  [21000 + calldata ${g.intrinsic - 21000} (${g.bytes} B) + execution ${g.used - g.intrinsic}]` : '';
      console.log(`  ${String(g.used).padStart(9)}  ${g.label}${g.per ? `  (${Math.round(g.used / g.per)} per header)` : ''}${split}`);
    }
  }
  console.log(`\n${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
