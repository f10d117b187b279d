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
//   node contracts/test/run.js btc goat   only the named suites (token, btc, mainnet, goat, settle)
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
  const byOp = {};
  for (const step of trace.structLogs) {
    const k = step.op;
    byOp[k] = byOp[k] || { count: 0, gas: 0 };
    byOp[k].count++;
    byOp[k].gas += step.gasCost;
  }
  const top = Object.entries(byOp).sort((a, b) => b[1].gas - a[1].gas).slice(0, 14)
    .map(([op, v]) => `${op}:${v.gas}/${v.count}`).join(' ');
  console.log(`       profile ${label}: ${top}`);
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
  const address = await chain.deploy('BtcLightClient', ['bytes', 'uint256', 'uint256', 'uint8', 'uint256'],
    [hex(cp.header), height, chainwork, 1, btc.REGTEST_POW_LIMIT]);
  return { address, checkpoint: { hash: cp.hash, time: 1_700_000_000, height } };
}

const concat = (hs) => hex(Buffer.concat(hs.map((h) => h.header)));

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
    const proof = [hex(rawTx), txIndex, hex(blk.branch), hex(blk.coinbasePreimage), hex(blk.coinbaseBranch), concat([block, ...after])];
    const ret = abi.words(await chain.call(client, VERIFY, [proof, 6]));
    eq(ret[0], hex(btc.dsha256(rawTx)), 'txid');
    eq(ret[1], hex(block.hash), 'block hash');
    eq(big(ret[2]), 210n, 'height');
    eq(big(ret[3]), 6n, 'confirmations');
    await expectRevert(chain, client, VERIFY, [proof, 7], 'InsufficientConfirmations(bytes32,uint256,uint256)');
  });

  const proofOf = (over = {}) => {
    const p = { rawTx: hex(rawTx), txIndex, branch: hex(blk.branch), cbPre: hex(blk.coinbasePreimage),
      cbBranch: hex(blk.coinbaseBranch), headers: concat([block, ...after]), ...over };
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
    await expectRevert(chain, client, VERIFY, proofOf({ headers: concat([block, after[1]]) }), 'BrokenHeaderChain(uint256)', word(1));
    await expectRevert(chain, client, VERIFY, proofOf({ headers: concat([block, after[0]]) }), 'UnknownHeader(bytes32)');
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
    const ret = abi.words(await chain.call(c2, 'verifyHeaderChain(bytes)', [concat(hs.slice(0, 500))]));
    eq(ret[0], hex(hs[0].hash), 'block hash');
    eq(big(ret[1]), 1n, 'height');
    eq(big(ret[2]), 500n, 'confirmations');
    // Intermediate headers are still not anchors (documented), and the 501st header extends the tip.
    await expectRevert(chain, c2, 'verifyHeaderChain(bytes)', [concat(hs.slice(0, 10))], 'UnknownHeader(bytes32)');
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
    const ret = abi.words(await chain.call(c3, 'verifyHeaderChain(bytes)', [concat(a.slice(5))]));
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
    client = await chain.deploy('BtcLightClient', ['bytes', 'uint256', 'uint256', 'uint8', 'uint256'],
      ['0x' + GENESIS, 0, 0x100010001n, 0, btc.MAINNET_POW_LIMIT]);
    eq(await chain.call(client, 'checkpointHash()'), '0x6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000', 'genesis hash');
    await chain.send(client, SUBMIT, ['0x' + BLOCK1 + BLOCK2]);
    eq(big(await chain.call(client, 'bestHeight()')), 2n, 'height 2');
    eq(big(await chain.call(client, 'bestChainwork()')), 0x300030003n, 'chainwork');
  });

  await test('checkpoint must sit on a retarget boundary', async () => {
    try {
      await chain.deploy('BtcLightClient', ['bytes', 'uint256', 'uint256', 'uint8', 'uint256'],
        ['0x' + GENESIS, 5, 1, 0, btc.MAINNET_POW_LIMIT]);
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
    const c2 = await chain.deploy('BtcLightClient', ['bytes', 'uint256', 'uint256', 'uint8', 'uint256'],
      [hex(cp.header), 0, 2, 0, btc.REGTEST_POW_LIMIT]);
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
// GOAT chain helpers
// ------------------------------------------------------------------------------------

async function goatPaymentBlock(goat, token, { payerKey, payee, value, invoiceId, fillers = 40, position = 17, fail = false }) {
  const payer = addressOf(payerKey);
  const domain = await goat.call(token, 'DOMAIN_SEPARATOR()');
  const structHash = keccakHex(abi.encode(['bytes32', 'address', 'address', 'uint256', 'uint256', 'uint256', 'bytes32'],
    [keccakText(TWA), payer, payee, value, 0, 4_000_000_000, invoiceId]));
  const { v, r, s } = signDigest(keccakHex('0x1901' + abi.strip0x(domain) + abi.strip0x(structHash)), payerKey);
  await goat.rpc('evm_setAutomine', [false]);
  const hashes = [];
  const from = goat.accounts[0];
  let nonce = Number(big(await goat.rpc('eth_getTransactionCount', [from, 'pending'])));
  let ours;
  for (let i = 0; i <= fillers; i++) {
    if (i === position) {
      // A failing payment: the signature does not match the value.
      ours = await goat.rpc('eth_sendTransaction', [{ from, nonce: '0x' + (nonce++).toString(16), to: token, gas: '0x30000',
        data: calldata('transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)',
          [payer, payee, fail ? value + 1 : value, 0, 4_000_000_000, invoiceId, v, r, s]) }]);
      hashes.push(ours);
    }
    if (i === fillers) break;
    const to = goat.accounts[1 + (i % 5)];
    hashes.push(await goat.rpc('eth_sendTransaction', [{ from, nonce: '0x' + (nonce++).toString(16), to, value: '0x1', gas: '0x5208' }]));
  }
  await goat.rpc('evm_mine', []);
  await goat.rpc('evm_setAutomine', [true]);
  const receipt = await goat.rpc('eth_getTransactionReceipt', [ours]);
  assert(receipt && receipt.status === (fail ? '0x0' : '0x1'), 'payment mined');
  const block = await goat.rpc('eth_getBlockByHash', [receipt.blockHash, false]);
  const headerRlp = eth.encodeHeader(block);
  eq(keccakHex(headerRlp), block.hash, 'header RLP reproduces the block hash');
  const receipts = [];
  for (const h of block.transactions) receipts.push(await goat.rpc('eth_getTransactionReceipt', [h]));
  const entries = receipts.map((rc, i) => [eth.rlp(eth.quantity(i)), eth.encodeReceipt(rc)]);
  const trie = new eth.Trie(entries);
  eq(hex(trie.rootHash()), block.receiptsRoot, 'receipts trie root');
  const index = Number(big(receipt.transactionIndex));
  return {
    block, headerRlp, index, receipt,
    encodedReceipt: entries[index][1],
    proof: trie.proof(entries[index][0]),
    trie, entries,
  };
}

function attest(digest, keys) {
  return keys.map((k) => signDigest(digest, k).sig);
}

// ------------------------------------------------------------------------------------
// GoatHeaderStore
// ------------------------------------------------------------------------------------

async function goatSuite(metis, goat) {
  console.log('GoatHeaderStore');
  const members = KEYS.slice(0, 5).map(addressOf);
  const store = await metis.deploy('GoatHeaderStore', ['address[]', 'uint256', 'uint256'], [members, 3, 2345]);
  const token = await goat.deploy('TestStablecoin', ['string', 'string', 'string'], ['USD Coin', 'USDC', '2']);
  await goat.send(token, 'mint(address,uint256)', [addressOf(KEYS[6]), 100_000_000]);
  const pay = await goatPaymentBlock(goat, token, { payerKey: KEYS[6], payee: goat.accounts[7], value: 1000, invoiceId: hex(rand32()) });
  const number = Number(big(pay.block.number));
  const SUB = 'submitHeader(bytes,bytes[])';

  await test('3-of-5 attestation stores the receipts root (gas ~80k, floor ~70.4k)', async () => {
    const digest = await metis.call(store, 'hashGoatHeader(uint256,bytes32)', [number, pay.block.hash]);
    const expected = keccakHex('0x1901' + abi.strip0x(await metis.call(store, 'DOMAIN_SEPARATOR()')) + abi.strip0x(keccakHex(
      abi.encode(['bytes32', 'uint256', 'uint256', 'bytes32'],
        [keccakText('GoatHeader(uint256 chainId,uint256 number,bytes32 blockHash)'), 2345, number, pay.block.hash]))));
    eq(digest, expected, 'EIP-712 digest');
    const sigs = attest(digest, [KEYS[4], KEYS[0], KEYS[2]]);
    await expectRevert(metis, store, SUB, [hex(pay.headerRlp), sigs.slice(0, 2)], 'TooFewAttestations(uint256,uint256)', word(2) + word(3));
    await expectRevert(metis, store, SUB, [hex(pay.headerRlp), [sigs[0], sigs[1], sigs[0]]], 'DuplicateAttester(address)');
    await expectRevert(metis, store, SUB, [hex(pay.headerRlp), [sigs[0], sigs[1], attest(digest, [KEYS[6]])[0]]],
      'NotACommitteeMember(address)', word(big(addressOf(KEYS[6]))));
    const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const s0 = signDigest(digest, KEYS[1]);
    const high = s0.r + (N - big(s0.s)).toString(16).padStart(64, '0') + (s0.v === 27 ? '1c' : '1b');
    await expectRevert(metis, store, SUB, [hex(pay.headerRlp), [sigs[0], sigs[1], high]], 'SignatureMalleable(uint256)', word(2));
    const receipt = await metis.send(store, SUB, [hex(pay.headerRlp), sigs]);
    const used = gas('GoatHeaderStore.submitHeader (3-of-5)', receipt);
    // Floor for this API: 21000 + calldata (~11.3k for a ~650-byte header and three ABI-encoded
    // signatures) + 22.1k (one fresh slot) + 9.3k (ecrecover) + 4.7k (committee) + 2.3k (event).
    assert(used <= 82_000, `gas ${used}`);
    eq(await metis.call(store, 'receiptsRoot(bytes32)', [pay.block.hash]), pay.block.receiptsRoot, 'root stored');
    const info = abi.words(await metis.call(store, 'headerInfo(bytes)', [hex(pay.headerRlp)]));
    eq(info[1], pay.block.parentHash, 'parent');
    eq(big(info[3]), big(pay.block.number), 'number');
    eq(big(info[4]), big(pay.block.timestamp), 'timestamp');
    eq(big(info[5]), 1n, 'known');
    await expectRevert(metis, store, SUB, [hex(pay.headerRlp), sigs], 'HeaderAlreadyKnown(bytes32)');
    await expectRevert(metis, store, SUB, ['0x' + 'c0', sigs], 'MalformedHeader()');
  });

  await test('committee update signed by the current committee', async () => {
    const newMembers = KEYS.slice(3, 8).map(addressOf);
    const UPD = 'updateCommittee(address[],uint256,uint256,bytes[])';
    const digest = await metis.call(store, 'hashCommitteeUpdate(address[],uint256,uint256)', [newMembers, 4, 0]);
    await expectRevert(metis, store, UPD, [newMembers, 4, 1, attest(digest, KEYS.slice(0, 3))], 'BadCommitteeNonce(uint256,uint256)');
    await expectRevert(metis, store, UPD, [newMembers, 4, 0, attest(digest, KEYS.slice(5, 8))], 'NotACommitteeMember(address)');
    await expectRevert(metis, store, UPD, [[newMembers[0], newMembers[0]], 1, 0,
      attest(await metis.call(store, 'hashCommitteeUpdate(address[],uint256,uint256)', [[newMembers[0], newMembers[0]], 1, 0]), KEYS.slice(0, 3))],
    'DuplicateMember(address)');
    await metis.send(store, UPD, [newMembers, 4, 0, attest(digest, KEYS.slice(0, 3))]);
    const c = abi.words(await metis.call(store, 'committee()'));
    eq(big(c[1]), 4n, 'threshold');
    eq(big(c[2]), 1n, 'nonce');
    eq(big(await metis.call(store, 'isCommitteeMember(address)', [members[0]])), 0n, 'old member out');
    eq(big(await metis.call(store, 'isCommitteeMember(address)', [newMembers[4]])), 1n, 'new member in');
    // Replay of the same update fails (nonce moved on).
    await expectRevert(metis, store, UPD, [newMembers, 4, 0, attest(digest, KEYS.slice(0, 3))], 'BadCommitteeNonce(uint256,uint256)');
  });
}

// ------------------------------------------------------------------------------------
// PaymentSettlement
// ------------------------------------------------------------------------------------

const CREATE = 'createInvoice(bytes32,uint8,bytes,address,uint256,uint64,bytes32)';
const INVOICE = 'invoice(bytes32)';
/** keccak256(abi.encode(creator, salt)), as PaymentSettlement.invoiceIdFor. */
const invoiceIdFor = (creator, salt) => keccakHex(abi.encode(['address', 'bytes32'], [creator, salt]));
const SETTLE_BTC = 'settleBtc(bytes32,((bytes,uint256,bytes,bytes32,bytes,bytes),uint256))';
const SETTLE_GOAT = 'settleGoat(bytes32,(bytes32,uint256,bytes,bytes[],uint256,uint256))';

async function settleSuite(metis, goat) {
  console.log('PaymentSettlement');
  const { address: client, checkpoint } = await deployRegtestClient(metis, 1000);
  const members = KEYS.slice(0, 5).map(addressOf);
  const store = await metis.deploy('GoatHeaderStore', ['address[]', 'uint256', 'uint256'], [members, 3, 2345]);
  const settlement = await metis.deploy('PaymentSettlement', ['address', 'uint256', 'uint256'], [client, store, 6]);
  const now = Number(big((await metis.rpc('eth_getBlockByNumber', ['latest', false])).timestamp));
  const expiry = now + 3600;
  // Invoice ids are derived from (creator, salt); the creator is accounts[0] unless stated.
  const salts = new Map();
  const newId = (creator = metis.accounts[0]) => {
    const salt = hex(rand32());
    const id = invoiceIdFor(creator, salt);
    salts.set(id, salt);
    return id;
  };
  const saltOf = (id) => salts.get(id);

  // Bitcoin chain: 50 headers, then the payment block + 5 confirmations as one batch.
  let tip = checkpoint;
  const base = btc.mineChain(tip, 50, REGTEST_BITS);
  await metis.send(client, SUBMIT, [concat(base)]);
  tip = base[49];

  const payeeScript = Buffer.from('0014' + '33'.repeat(20), 'hex');
  const btcInvoice = newId();
  const rawTx = paymentTx(payeeScript, 50_000, btcInvoice);
  const blk = buildBlock(rawTx, 1500, 3000, 1051);
  const block = btc.mine({ prev: tip.hash, merkleRoot: blk.merkleRoot, time: tip.time + 600, bits: REGTEST_BITS });
  block.time = tip.time + 600;
  const conf = btc.mineChain(block, 5, REGTEST_BITS, { salt: 1 });
  await metis.send(client, SUBMIT, [concat([block, ...conf])]);
  const btcProof = (over = {}) => {
    const p = { rawTx: hex(rawTx), txIndex: 1500, branch: hex(blk.branch), cbPre: hex(blk.coinbasePreimage),
      cbBranch: hex(blk.coinbaseBranch), headers: concat([block, ...conf]), vout: 0, ...over };
    return [[p.rawTx, p.txIndex, p.branch, p.cbPre, p.cbBranch, p.headers], p.vout];
  };

  await test('createInvoice validation', async () => {
    await expectRevert(metis, settlement, CREATE, [saltOf(btcInvoice), 2, hex(payeeScript), '0x' + '00'.repeat(20), 1, expiry, '0x' + '00'.repeat(32)], 'InvalidRail(uint8)');
    await expectRevert(metis, settlement, CREATE, [saltOf(btcInvoice), 0, '0x', '0x' + '00'.repeat(20), 1, expiry, '0x' + '00'.repeat(32)], 'InvalidPayee()');
    await expectRevert(metis, settlement, CREATE, [saltOf(btcInvoice), 0, hex(payeeScript), metis.accounts[1], 1, expiry, '0x' + '00'.repeat(32)], 'InvalidAsset(address)');
    await expectRevert(metis, settlement, CREATE, [saltOf(btcInvoice), 0, hex(payeeScript), '0x' + '00'.repeat(20), 0, expiry, '0x' + '00'.repeat(32)], 'ZeroAmount()');
    await expectRevert(metis, settlement, CREATE, [saltOf(btcInvoice), 0, hex(payeeScript), '0x' + '00'.repeat(20), 1, now - 10, '0x' + '00'.repeat(32)], 'InvalidExpiry(uint64,uint256)');
    await expectRevert(metis, settlement, CREATE, [saltOf(btcInvoice), 1, '0x' + '11'.repeat(21), metis.accounts[1], 1, expiry, '0x' + '00'.repeat(32)], 'InvalidPayee()');
    const receipt = await metis.send(settlement, CREATE, [saltOf(btcInvoice), 0, hex(payeeScript), '0x' + '00'.repeat(20), 50_000, expiry, hex(rand32())]);
    gas('PaymentSettlement.createInvoice (BTC, P2WPKH)', receipt);
    await expectRevert(metis, settlement, CREATE, [saltOf(btcInvoice), 0, hex(payeeScript), '0x' + '00'.repeat(20), 1, expiry, '0x' + '00'.repeat(32)], 'InvoiceExists(bytes32)');
  });

  await test('settleBtc rejections', async () => {
    await expectRevert(metis, settlement, SETTLE_BTC, [hex(rand32()), btcProof()], 'UnknownInvoice(bytes32)');
    await expectRevert(metis, settlement, SETTLE_BTC, [btcInvoice, btcProof({ vout: 1 })], 'WrongPayee()');
    await expectRevert(metis, settlement, SETTLE_BTC, [btcInvoice, btcProof({ vout: 3 })], 'NoPaymentOutput(uint256,uint256)', word(3) + word(3));
    // Light-client errors bubble up.
    await expectRevert(metis, settlement, SETTLE_BTC, [btcInvoice, btcProof({ headers: concat([block, ...conf.slice(0, 4)]) })], 'UnknownHeader(bytes32)');
    // An invoice the transaction does not name.
    const greedy = newId();
    await metis.send(settlement, CREATE, [saltOf(greedy), 0, hex(payeeScript), '0x' + '00'.repeat(20), 50_001, expiry, hex(rand32())]);
    await expectRevert(metis, settlement, SETTLE_BTC, [greedy, btcProof()], 'WrongInvoiceId(bytes32,bytes32)');
    // Not enough confirmations: a fresh block with 2 headers on top.
    const other = newId();
    await metis.send(settlement, CREATE, [saltOf(other), 0, hex(payeeScript), '0x' + '00'.repeat(20), 1, expiry, hex(rand32())]);
    const tx2 = paymentTx(payeeScript, 10, other, { opReturn: false });
    const b2 = buildBlock(tx2, 3, 7, 1057);
    const last = conf[4];
    const h2 = btc.mine({ prev: last.hash, merkleRoot: b2.merkleRoot, time: last.time + 600, bits: REGTEST_BITS });
    h2.time = last.time + 600;
    const c2 = btc.mineChain(h2, 5, REGTEST_BITS, { salt: 2 });
    await metis.send(client, SUBMIT, [concat([h2, c2[0]])]);
    const p2 = [[hex(tx2), 3, hex(b2.branch), hex(b2.coinbasePreimage), hex(b2.coinbaseBranch), concat([h2, c2[0]])], 0];
    await expectRevert(metis, settlement, SETTLE_BTC, [other, p2], 'InsufficientConfirmations(bytes32,uint256,uint256)');
    await metis.send(client, SUBMIT, [concat(c2.slice(1))]);
    await expectRevert(metis, settlement, SETTLE_BTC, [other, p2], 'MissingOpReturn()');
    await expectRevert(metis, settlement, SETTLE_BTC, [other, [btcProof()[0], 2]], 'WrongPayee()');
  });

  await test('settleBtc settles exactly once (anchor below the tip)', async () => {
    const receipt = await metis.send(settlement, SETTLE_BTC, [btcInvoice, btcProof()]);
    gas('PaymentSettlement.settleBtc (3000-tx block, 6 headers, anchor below tip)', receipt);
    eq(big(await metis.call(settlement, 'isSettled(bytes32)', [btcInvoice])), 1n, 'settled');
    const ev = receipt.logs.find((l) => l.topics[0] === keccakText('InvoiceSettled(bytes32,bytes,uint8,bytes32,uint256,uint256)'));
    assert(ev && ev.topics[1] === btcInvoice, 'InvoiceSettled');
    await expectRevert(metis, settlement, SETTLE_BTC, [btcInvoice, btcProof()], 'AlreadySettled(bytes32)');
  });

  await test('settleBtc in the relayer flow: block + 5 headers submitted, proof to the tip (gas <= 90k)', async () => {
    const id = newId();
    await metis.send(settlement, CREATE, [saltOf(id), 0, hex(payeeScript), '0x' + '00'.repeat(20), 50_000, expiry, hex(rand32())]);
    const tx = paymentTx(payeeScript, 50_000, id);
    const bb = buildBlock(tx, 1500, 3000, 0);
    const bt = await bestOf(metis, client);
    const hb = btc.mine({ prev: Buffer.from(abi.strip0x(bt.hash), 'hex'), merkleRoot: bb.merkleRoot, time: 1_700_000_000 + 600 * 85, bits: REGTEST_BITS });
    hb.time = 1_700_000_000 + 600 * 85;
    const cs = btc.mineChain(hb, 5, REGTEST_BITS, { salt: 12 });
    await metis.send(client, SUBMIT, [concat([hb, ...cs])]);
    const p = [[hex(tx), 1500, hex(bb.branch), hex(bb.coinbasePreimage), hex(bb.coinbaseBranch), concat([hb, ...cs])], 0];
    const receipt = await metis.send(settlement, SETTLE_BTC, [id, p]);
    const used = gas('PaymentSettlement.settleBtc (3000-tx block, 6 headers to the tip)', receipt);
    assert(used <= 90_000, `settleBtc gas ${used}`);
  });

  await test('a Bitcoin payment names one invoice: the first OP_RETURN <32 bytes>', async () => {
    // A tx with two OP_RETURN ids (b first, then a) and one paying output: only b can settle.
    const a = newId();
    const b = newId();
    for (const id of [a, b]) await metis.send(settlement, CREATE, [saltOf(id), 0, hex(payeeScript), '0x' + '00'.repeat(20), 100, expiry, hex(rand32())]);
    const tx = paymentTx(payeeScript, 100, a, { extraOpReturn: Buffer.from(abi.strip0x(b), 'hex') });
    const bb = buildBlock(tx, 1, 2, 1063);
    const bt = await bestOf(metis, client);
    const prev = Buffer.from(abi.strip0x(bt.hash), 'hex');
    const hb = btc.mine({ prev, merkleRoot: bb.merkleRoot, time: 1_700_000_000 + 600 * 80, bits: REGTEST_BITS });
    hb.time = 1_700_000_000 + 600 * 80;
    const cs = btc.mineChain(hb, 5, REGTEST_BITS, { salt: 8 });
    await metis.send(client, SUBMIT, [concat([hb, ...cs])]);
    const p = [[hex(tx), 1, hex(bb.branch), hex(bb.coinbasePreimage), hex(bb.coinbaseBranch), concat([hb, ...cs])], 0];
    await expectRevert(metis, settlement, SETTLE_BTC, [a, p], 'WrongInvoiceId(bytes32,bytes32)', abi.strip0x(a) + abi.strip0x(b));
    await metis.send(settlement, SETTLE_BTC, [b, p]);
    await expectRevert(metis, settlement, SETTLE_BTC, [b, p], 'AlreadySettled(bytes32)');
    await expectRevert(metis, settlement, SETTLE_BTC, [a, p], 'WrongInvoiceId(bytes32,bytes32)');
  });

  await test('settleBtc with the payment block stored (1-header proof)', async () => {
    const id = newId();
    await metis.send(settlement, CREATE, [saltOf(id), 0, hex(payeeScript), '0x' + '00'.repeat(20), 50_000, expiry, hex(rand32())]);
    const tx = paymentTx(payeeScript, 50_000, id);
    const bb = buildBlock(tx, 2900, 3000, 0);
    const bt = await bestOf(metis, client);
    const hb = btc.mine({ prev: Buffer.from(abi.strip0x(bt.hash), 'hex'), merkleRoot: bb.merkleRoot, time: 1_700_000_000 + 600 * 90, bits: REGTEST_BITS });
    hb.time = 1_700_000_000 + 600 * 90;
    await metis.send(client, SUBMIT, [hex(hb.header)]);
    await metis.send(client, SUBMIT, [concat(btc.mineChain(hb, 5, REGTEST_BITS, { salt: 9 }))]);
    const p = [[hex(tx), 2900, hex(bb.branch), hex(bb.coinbasePreimage), hex(bb.coinbaseBranch), hex(hb.header)], 0];
    const receipt = await metis.send(settlement, SETTLE_BTC, [id, p]);
    gas('PaymentSettlement.settleBtc (3000-tx block, 1-header proof, block stored below tip)', receipt);
  });

  await test('invoice ids are derived from (creator, salt): no squatting', async () => {
    // Review finding 1: an attacker used to create the id a service was about to use (amount 1),
    // settle it for 1 sat, and make the service's createInvoice revert while isSettled(id) held.
    const [service, attacker] = metis.accounts;
    const salt = hex(rand32());
    const id = invoiceIdFor(service, salt);
    eq(await metis.call(settlement, 'invoiceIdFor(address,bytes32)', [service, salt]), id, 'invoiceIdFor');
    // The attacker front-runs with the service's salt (and, as before the fix, with the id itself).
    const zero20 = '0x' + '00'.repeat(20);
    for (const s of [salt, id]) await metis.send(settlement, CREATE, [s, 0, hex(payeeScript), zero20, 1, expiry, '0x' + '00'.repeat(32)], attacker);
    const squat = invoiceIdFor(attacker, salt);
    assert(squat !== id, 'different id');
    // The attacker settles its own 1-sat invoice.
    const tx = paymentTx(payeeScript, 1, squat);
    const bb = buildBlock(tx, 1, 2, 0);
    const bt = await bestOf(metis, client);
    const hb = btc.mine({ prev: Buffer.from(abi.strip0x(bt.hash), 'hex'), merkleRoot: bb.merkleRoot, time: 1_700_000_000 + 600 * 95, bits: REGTEST_BITS });
    hb.time = 1_700_000_000 + 600 * 95;
    const cs = btc.mineChain(hb, 5, REGTEST_BITS, { salt: 40 });
    await metis.send(client, SUBMIT, [concat([hb, ...cs])]);
    const p = [[hex(tx), 1, hex(bb.branch), hex(bb.coinbasePreimage), hex(bb.coinbaseBranch), concat([hb, ...cs])], 0];
    await metis.send(settlement, SETTLE_BTC, [squat, p], attacker);
    eq(big(await metis.call(settlement, 'isSettled(bytes32)', [squat])), 1n, 'squat settled');
    eq(big(await metis.call(settlement, 'isSettled(bytes32)', [id])), 0n, 'service id untouched');
    // The service's own creation succeeds and returns the derived id.
    const args = [salt, 0, hex(payeeScript), zero20, 100_000, expiry, hex(rand32())];
    eq(await metis.call(settlement, CREATE, args, service), id, 'returned id');
    const receipt = await metis.send(settlement, CREATE, args, service);
    const ev = receipt.logs.find((l) => l.topics[0] === keccakText('InvoiceCreated(bytes32,uint8,address,bytes,address,uint256,uint64,bytes32)'));
    assert(ev, 'InvoiceCreated');
    eq(ev.topics[1], id, 'event id');
    eq(ev.topics[3], '0x' + word(big(service)), 'event creator (indexed)');
    const inv = abi.words(await metis.call(settlement, INVOICE, [id]));
    // Invoice tuple (offset-prefixed): rail, status, creator, payee offset, asset, amount, expiry, serviceId.
    eq(big(inv[1]), 0n, 'rail');
    eq(big(inv[2]), 1n, 'status Open');
    eq(big(inv[3]), big(service), 'creator');
    eq(big(inv[6]), 100_000n, 'amount');
    eq(big(abi.words(await metis.call(settlement, INVOICE, [squat]))[3]), big(attacker), 'squat creator');
    // The 1-sat payment names the attacker's id, not the service's; the salt cannot be reused.
    await expectRevert(metis, settlement, SETTLE_BTC, [id, p], 'WrongInvoiceId(bytes32,bytes32)', abi.strip0x(id) + abi.strip0x(squat));
    await expectRevert(metis, settlement, CREATE, args, 'InvoiceExists(bytes32)', abi.strip0x(id));
  });

  await test('truncated transactions revert with MalformedTx, not an arithmetic panic', async () => {
    // Review finding 4: `p - start` underflowed (Panic 0x11) when a CompactSize did not fit.
    const id = newId();
    await metis.send(settlement, CREATE, [saltOf(id), 0, hex(payeeScript), '0x' + '00'.repeat(20), 1, expiry, hex(rand32())]);
    const short = Buffer.from('020000', 'hex'); // ends inside the version: input count missing
    const noScriptLen = Buffer.concat([Buffer.from('0200000001', 'hex'), rand32(), Buffer.from('01000000', 'hex')]); // ends after the outpoint
    const bigVarint = Buffer.concat([Buffer.from('02000000fd01', 'hex')]); // 0xfd count cut short
    const cb = btc.coinbaseTx(0, 'm');
    const txs = [short, noScriptLen, bigVarint];
    const txids = [btc.dsha256(cb), ...txs.map(btc.dsha256), rand32()];
    const bt = await bestOf(metis, client);
    const hb = btc.mine({ prev: Buffer.from(abi.strip0x(bt.hash), 'hex'), merkleRoot: btc.merkleRoot(txids), time: 1_700_000_000 + 600 * 101, bits: REGTEST_BITS });
    hb.time = 1_700_000_000 + 600 * 101;
    const cs = btc.mineChain(hb, 5, REGTEST_BITS, { salt: 41 });
    await metis.send(client, SUBMIT, [concat([hb, ...cs])]);
    const expected = [3, 41, 4];
    for (let i = 0; i < txs.length; i++) {
      const p = [[hex(txs[i]), i + 1, hex(btc.merkleBranch(txids, i + 1)), hex(btc.sha256(cb)), hex(btc.merkleBranch(txids, 0)), concat([hb, ...cs])], 0];
      await expectRevert(metis, settlement, SETTLE_BTC, [id, p], 'MalformedTx(uint256)', word(expected[i]));
    }
  });

  await test('expired invoices do not settle', async () => {
    const id = newId();
    const t = Number(big((await metis.rpc('eth_getBlockByNumber', ['latest', false])).timestamp));
    await metis.send(settlement, CREATE, [saltOf(id), 0, hex(payeeScript), '0x' + '00'.repeat(20), 1, t + 5, hex(rand32())]);
    await metis.rpc('evm_increaseTime', [100]);
    await metis.rpc('evm_mine', []);
    await expectRevert(metis, settlement, SETTLE_BTC, [id, btcProof()], 'InvoiceExpired(bytes32,uint64,uint256)');
  });

  // ---- GOAT ----
  const token = await goat.deploy('TestStablecoin', ['string', 'string', 'string'], ['USD Coin', 'USDC', '2']);
  const fake = await goat.deploy('TestStablecoin', ['string', 'string', 'string'], ['USD Coin', 'USDC', '2']);
  const payerKey = KEYS[6];
  await goat.send(token, 'mint(address,uint256)', [addressOf(payerKey), 100_000_000]);
  await goat.send(fake, 'mint(address,uint256)', [addressOf(payerKey), 100_000_000]);
  const merchant = goat.accounts[8];
  const now2 = Number(big((await metis.rpc('eth_getBlockByNumber', ['latest', false])).timestamp));
  const goatInvoice = newId();
  await metis.send(settlement, CREATE, [saltOf(goatInvoice), 1, merchant, token, 1_000_000, now2 + 3600, hex(rand32())]);
  const pay = await goatPaymentBlock(goat, token, { payerKey, payee: merchant, value: 1_000_000, invoiceId: goatInvoice, fillers: 60, position: 25 });
  const goatProof = (over = {}) => {
    const p = { blockHash: pay.block.hash, txIndex: pay.index, receipt: hex(pay.encodedReceipt), proof: pay.proof.map(hex), a: 0, t: 1, ...over };
    return [p.blockHash, p.txIndex, p.receipt, p.proof, p.a, p.t];
  };

  await test('settleGoat rejections', async () => {
    await expectRevert(metis, settlement, SETTLE_GOAT, [goatInvoice, goatProof()], 'UnknownGoatHeader(bytes32)');
    const digest = await metis.call(store, 'hashGoatHeader(uint256,bytes32)', [Number(big(pay.block.number)), pay.block.hash]);
    const r = await metis.send(store, 'submitHeader(bytes,bytes[])', [hex(pay.headerRlp), attest(digest, [KEYS[1], KEYS[3], KEYS[4]])]);
    gas('GoatHeaderStore.submitHeader (3-of-5, 60-tx block)', r);
    await expectRevert(metis, settlement, SETTLE_GOAT, [btcInvoice, goatProof()], 'AlreadySettled(bytes32)');
    await expectRevert(metis, settlement, SETTLE_GOAT, [goatInvoice, goatProof({ a: 1, t: 0 })], 'LogsNotAdjacent(uint256,uint256)', word(1) + word(0));
    await expectRevert(metis, settlement, SETTLE_GOAT, [goatInvoice, goatProof({ a: 0, t: 2 })], 'LogsNotAdjacent(uint256,uint256)');
    await expectRevert(metis, settlement, SETTLE_GOAT, [goatInvoice, goatProof({ a: 1, t: 2 })], 'LogNotFound(uint256)', word(2));
    await expectRevert(metis, settlement, SETTLE_GOAT, [goatInvoice, goatProof({ txIndex: pay.index + 1 })], 'MptNodeHashMismatch(uint256)');
    await expectRevert(metis, settlement, SETTLE_GOAT, [goatInvoice, goatProof({ receipt: hex(pay.encodedReceipt.subarray(1)) })], 'ReceiptMismatch()');
    await expectRevert(metis, settlement, SETTLE_GOAT, [goatInvoice, goatProof({ proof: pay.proof.slice(0, -1).map(hex) })], 'MptMissingNode(uint256)');
    await expectRevert(metis, settlement, SETTLE_GOAT, [goatInvoice, goatProof({ proof: [...pay.proof, pay.proof[0]].map(hex) })], 'MptUnusedNodes(uint256,uint256)');
    const tampered = Buffer.from(pay.proof[pay.proof.length - 1]);
    tampered[tampered.length - 1] ^= 1;
    await expectRevert(metis, settlement, SETTLE_GOAT, [goatInvoice, goatProof({ proof: [...pay.proof.slice(0, -1).map(hex), hex(tampered)] })], 'MptNodeHashMismatch(uint256)');
    const other = newId();
    await metis.send(settlement, CREATE, [saltOf(other), 1, merchant, token, 1_000_000, now2 + 3600, hex(rand32())]);
    await expectRevert(metis, settlement, SETTLE_GOAT, [other, goatProof()], 'WrongInvoiceId(bytes32,bytes32)');
    const lookalike = newId();
    await metis.send(settlement, CREATE, [saltOf(lookalike), 1, merchant, fake, 1_000_000, now2 + 3600, hex(rand32())]);
    await expectRevert(metis, settlement, SETTLE_GOAT, [lookalike, goatProof()], 'WrongToken(address,address)');
  });

  await test('settleGoat settles exactly once (gas <= 130k)', async () => {
    const receipt = await metis.send(settlement, SETTLE_GOAT, [goatInvoice, goatProof()]);
    const used = gas(`PaymentSettlement.settleGoat (60-tx block, ${pay.proof.length} trie nodes)`, receipt);
    eq(big(await metis.call(settlement, 'isSettled(bytes32)', [goatInvoice])), 1n, 'settled');
    await expectRevert(metis, settlement, SETTLE_GOAT, [goatInvoice, goatProof()], 'AlreadySettled(bytes32)');
    assert(used <= 130_000, `settleGoat gas ${used}`);
  });

  await test('settleGoat: small amount, wrong payee, failed transaction', async () => {
    const submit = async (p) => {
      const digest = await metis.call(store, 'hashGoatHeader(uint256,bytes32)', [Number(big(p.block.number)), p.block.hash]);
      await metis.send(store, 'submitHeader(bytes,bytes[])', [hex(p.headerRlp), attest(digest, [KEYS[0], KEYS[1], KEYS[2]])]);
      return [p.block.hash, p.index, hex(p.encodedReceipt), p.proof.map(hex), 0, 1];
    };
    const id1 = newId();
    await metis.send(settlement, CREATE, [saltOf(id1), 1, merchant, token, 2_000_000, now2 + 3600, hex(rand32())]);
    const p1 = await submit(await goatPaymentBlock(goat, token, { payerKey, payee: merchant, value: 1_999_999, invoiceId: id1, fillers: 3, position: 1 }));
    await expectRevert(metis, settlement, SETTLE_GOAT, [id1, p1], 'AmountTooLow(uint256,uint256)', word(1_999_999) + word(2_000_000));
    const id2 = newId();
    await metis.send(settlement, CREATE, [saltOf(id2), 1, goat.accounts[9], token, 5, now2 + 3600, hex(rand32())]);
    const p2 = await submit(await goatPaymentBlock(goat, token, { payerKey, payee: merchant, value: 5, invoiceId: id2, fillers: 2, position: 2 }));
    await expectRevert(metis, settlement, SETTLE_GOAT, [id2, p2], 'WrongPayee()');
    const id3 = newId();
    await metis.send(settlement, CREATE, [saltOf(id3), 1, merchant, token, 5, now2 + 3600, hex(rand32())]);
    const p3 = await submit(await goatPaymentBlock(goat, token, { payerKey, payee: merchant, value: 5, invoiceId: id3, fillers: 2, position: 0, fail: true }));
    await expectRevert(metis, settlement, SETTLE_GOAT, [id3, p3], 'ReceiptFailed(uint256)', word(0));
    await expectRevert(metis, settlement, SETTLE_BTC, [id3, btcProof()], 'WrongRail(uint8,uint8)', word(0) + word(1));
  });

  await test('settleGoat with a single-transaction block and a 130-transaction block', async () => {
    for (const [fillers, position] of [[1, 0], [130, 129]]) {
      const id = newId();
      await metis.send(settlement, CREATE, [saltOf(id), 1, merchant, token, 10, now2 + 3600, hex(rand32())]);
      const p = await goatPaymentBlock(goat, token, { payerKey, payee: merchant, value: 10, invoiceId: id, fillers, position });
      const digest = await metis.call(store, 'hashGoatHeader(uint256,bytes32)', [Number(big(p.block.number)), p.block.hash]);
      await metis.send(store, 'submitHeader(bytes,bytes[])', [hex(p.headerRlp), attest(digest, [KEYS[0], KEYS[1], KEYS[2]])]);
      const receipt = await metis.send(settlement, SETTLE_GOAT, [id, [p.block.hash, p.index, hex(p.encodedReceipt), p.proof.map(hex), 0, 1]]);
      gas(`PaymentSettlement.settleGoat (${p.block.transactions.length}-tx block, index ${p.index}, ${p.proof.length} nodes)`, receipt);
    }
  });
}

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
    if (want('goat') || want('settle')) goat = await Chain.start({ chainId: 2345, hardfork: 'prague' });
    if (want('goat')) await goatSuite(metis, goat);
    if (want('settle')) await settleSuite(metis, goat);
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
