// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Scenario tests of GoatHeaderStore, PaymentSettlement and AccessPass on anvil: signed and
// on-chain invoices, inline and stored GOAT attestations, batches with bad items, service
// hooks, and the gas of each path. Called by run.js (suites "goat" and "settle"), which
// passes its test framework and Bitcoin helpers in `t`.
'use strict';

const crypto = require('crypto');
const abi = require('./lib/abi');
const btc = require('./lib/btc');
const eth = require('./lib/eth');
const { signDigest, addressOf, KEYS } = require('./lib/chain');

const { calldata, keccakText, keccakHex, word } = abi;
const hex = (b) => '0x' + Buffer.from(b).toString('hex');
const rand32 = () => crypto.randomBytes(32);
const big = (h) => BigInt(h);
const ZERO20 = '0x' + '00'.repeat(20);
const ZERO32 = '0x' + '00'.repeat(32);

// ABI shapes of PaymentSettlement's structs.
const TERMS = '(address,bytes32,uint8,bytes,address,uint256,uint64,address,bytes32)';
const BTC_BLOCK = '(bytes,bytes32,bytes)';
const BTC_PAYMENT = `(${TERMS},bytes,bytes,uint256,bytes)`;
const SETTLE_BTC = `settleBtc((${BTC_BLOCK},${BTC_PAYMENT}[])[])`;
const GOAT_BLOCK = '(bytes32,uint256,uint256,bytes32,bytes)';
const GOAT_PAYMENT = `(${TERMS},bytes,uint256,bytes,uint256)`;
const SETTLE_GOAT = `settleGoat((${GOAT_BLOCK},bytes[],${GOAT_PAYMENT}[])[])`;
const CREATE = `createInvoice(${TERMS})`;
const HASH_TERMS = `hashTerms(${TERMS})`;
const ATTEST = 'attestBlock(bytes32,uint256,uint256,bytes32,bytes)';
const HASH_BLOCK = 'hashGoatBlock(bytes32,uint256,uint256,bytes32)';
const SETTLED_EVENT = keccakText('InvoiceSettled(bytes32,address,bytes32,uint8,bytes,bytes32,uint256,uint256)');
const SKIPPED_EVENT = keccakText('SettlementSkipped(bytes32,uint256,uint256,bytes)');
const HOOK_FAILED_EVENT = keccakText('ServiceCallFailed(bytes32,address)');
const TWA = 'TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)';

const invoiceIdFor = (merchant, ref) => keccakHex(abi.encode(['address', 'bytes32'], [merchant, ref]));

/** Terms object -> ABI tuple. */
function termsTuple(t) {
  return [t.merchant, t.ref, t.rail, t.payee, t.asset || ZERO20, t.amount, t.expiry, t.service || ZERO20, t.serviceId || ZERO32];
}

/** The EIP-712 digest of the terms, computed here (checked against hashTerms once). */
function termsDigest(t, chainId, contract) {
  const typeHash = keccakText('Invoice(address merchant,bytes32 ref,uint8 rail,bytes payee,address asset,uint256 amount,uint64 expiry,address service,bytes32 serviceId)');
  const structHash = keccakHex(abi.encode(
    ['bytes32', 'address', 'bytes32', 'uint8', 'bytes32', 'address', 'uint256', 'uint64', 'address', 'bytes32'],
    [typeHash, t.merchant, t.ref, t.rail, keccakHex(t.payee), t.asset || ZERO20, t.amount, t.expiry, t.service || ZERO20, t.serviceId || ZERO32]));
  const domain = keccakHex(abi.encode(['bytes32', 'bytes32', 'bytes32', 'uint256', 'address'], [
    keccakText('EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)'),
    keccakText('gmrelay PaymentSettlement'), keccakText('2'), chainId, contract]));
  return keccakHex('0x1901' + abi.strip0x(domain) + abi.strip0x(structHash));
}

const addressCache = new Map();
function addr(key) {
  if (!addressCache.has(key)) addressCache.set(key, addressOf(key).toLowerCase());
  return addressCache.get(key);
}

/** Committee signatures of `digest`, sorted by signer address and packed (65 bytes each). */
function quorum(digest, keys) {
  const sorted = keys.slice().sort((a, b) => (big(addr(a)) < big(addr(b)) ? -1 : 1));
  return '0x' + sorted.map((k) => abi.strip0x(signDigest(digest, k).sig)).join('');
}

/** The 48-byte compact form of an 80-byte header (without its prevHash). */
const compact = (h) => Buffer.concat([h.header.subarray(0, 4), h.header.subarray(36, 80)]);
/** Proof headers: the block's 80-byte header, then its descendants in compact form. */
const proofHeaders = (block, descendants) => hex(Buffer.concat([block.header, ...descendants.map(compact)]));

module.exports = function suites(t) {
  const { test, assert, eq, expectRevert, expectError, gas } = t;

  function logsOf(receipt, topic) {
    return receipt.logs.filter((l) => l.topics[0] === topic);
  }

  // ----------------------------------------------------------------------------------
  // GOAT chain helpers
  // ----------------------------------------------------------------------------------

  /** EIP-3009 transferWithAuthorization calldata signed by the payer. */
  async function authorization(goat, token, { payerKey, payee, value, nonce, fail = false }) {
    const payer = addr(payerKey);
    const domain = await goat.call(token, 'DOMAIN_SEPARATOR()');
    const structHash = keccakHex(abi.encode(['bytes32', 'address', 'address', 'uint256', 'uint256', 'uint256', 'bytes32'],
      [keccakText(TWA), payer, payee, value, 0, 4_000_000_000, nonce]));
    const { v, r, s } = signDigest(keccakHex('0x1901' + abi.strip0x(domain) + abi.strip0x(structHash)), payerKey);
    return calldata('transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)',
      [payer, payee, fail ? value + 1 : value, 0, 4_000_000_000, nonce, v, r, s]);
  }

  /**
   * Mines one GOAT block holding `payments` (after `fillers` plain transfers) and returns the
   * block, its receipts trie and each payment's index.
   */
  async function goatBlock(goat, token, payments, { fillers = 0 } = {}) {
    const datas = [];
    for (const p of payments) datas.push(await authorization(goat, token, p));
    await goat.rpc('evm_setAutomine', [false]);
    const from = goat.accounts[0];
    let nonce = Number(big(await goat.rpc('eth_getTransactionCount', [from, 'pending'])));
    for (let i = 0; i < fillers; i++) {
      await goat.rpc('eth_sendTransaction', [{ from, nonce: '0x' + (nonce++).toString(16), to: goat.accounts[1 + (i % 5)], value: '0x1', gas: '0x5208' }]);
    }
    const ours = [];
    for (const data of datas) {
      ours.push(await goat.rpc('eth_sendTransaction', [{ from, nonce: '0x' + (nonce++).toString(16), to: token, gas: '0x30000', data }]));
    }
    await goat.rpc('evm_mine', []);
    await goat.rpc('evm_setAutomine', [true]);
    const receipts = [];
    for (const h of ours) receipts.push(await goat.rpc('eth_getTransactionReceipt', [h]));
    const block = await goat.rpc('eth_getBlockByHash', [receipts[0].blockHash, false]);
    const all = [];
    for (const h of block.transactions) all.push(await goat.rpc('eth_getTransactionReceipt', [h]));
    const entries = all.map((rc, i) => [eth.rlp(eth.quantity(i)), eth.encodeReceipt(rc)]);
    const trie = new eth.Trie(entries);
    eq(hex(trie.rootHash()), block.receiptsRoot, 'receipts trie root');
    const indexes = receipts.map((r, i) => {
      assert(r.status === (payments[i].fail ? '0x0' : '0x1'), `payment ${i} status`);
      return Number(big(r.transactionIndex));
    });
    return {
      block,
      number: Number(big(block.number)),
      timestamp: Number(big(block.timestamp)),
      indexes,
      proof: (index) => trie.proof(entries[index][0]),
    };
  }

  /** GoatBlock tuple with inline signatures of `keys` (or none: stored attestation). */
  async function goatBlockTuple(metis, store, gb, keys = []) {
    const digest = await metis.call(store, HASH_BLOCK, [gb.block.hash, gb.number, gb.timestamp, gb.block.receiptsRoot]);
    return [gb.block.hash, gb.number, gb.timestamp, gb.block.receiptsRoot, keys.length ? quorum(digest, keys) : '0x'];
  }

  /** A shared node pool for the payments at `indexes`, and each payment's path into it. */
  function nodePool(gb, indexes) {
    const pool = [];
    const at = new Map();
    const paths = indexes.map((i) => {
      const path = gb.proof(i).map((node) => {
        const k = hex(node);
        if (!at.has(k)) {
          at.set(k, pool.length);
          pool.push(k);
        }
        return at.get(k);
      });
      return hex(Buffer.from(path));
    });
    return { pool, paths };
  }

  // ----------------------------------------------------------------------------------
  // GoatHeaderStore
  // ----------------------------------------------------------------------------------

  async function goatSuite(metis, goat) {
    console.log('GoatHeaderStore');
    const members = KEYS.slice(0, 5).map(addr);
    const store = await metis.deploy('GoatHeaderStore', ['address[]', 'uint256', 'uint256'], [members, 3, 2345]);
    const token = await goat.deploy('TestStablecoin', ['string', 'string', 'string'], ['USD Coin', 'USDC', '2']);
    await goat.send(token, 'mint(address,uint256)', [addr(KEYS[6]), 100_000_000]);
    const gb = await goatBlock(goat, token, [{ payerKey: KEYS[6], payee: goat.accounts[7], value: 1000, nonce: hex(rand32()) }], { fillers: 40 });
    const fields = [gb.block.hash, gb.number, gb.timestamp, gb.block.receiptsRoot];

    await test('block attestation digest names the GOAT chain, Metis chain and contract (EIP-712)', async () => {
      const digest = await metis.call(store, HASH_BLOCK, fields);
      const domain = keccakHex(abi.encode(['bytes32', 'bytes32', 'bytes32', 'uint256', 'address'], [
        keccakText('EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)'),
        keccakText('gmrelay GoatHeaderStore'), keccakText('2'), 1088, store]));
      const structHash = keccakHex(abi.encode(['bytes32', 'uint256', 'uint256', 'uint256', 'bytes32', 'bytes32'], [
        keccakText('GoatBlock(uint256 goatChainId,uint256 number,uint256 timestamp,bytes32 blockHash,bytes32 receiptsRoot)'),
        2345, gb.number, gb.timestamp, gb.block.hash, gb.block.receiptsRoot]));
      eq(digest, keccakHex('0x1901' + abi.strip0x(domain) + abi.strip0x(structHash)), 'digest');
      eq(await metis.call(store, 'DOMAIN_SEPARATOR()'), domain, 'domain');
    });

    await test('attestation rejections: too few, duplicate, non-member, unsorted, high s, bad v, other fields', async () => {
      const digest = await metis.call(store, HASH_BLOCK, fields);
      const sorted = KEYS.slice(0, 3).slice().sort((a, b) => (big(addr(a)) < big(addr(b)) ? -1 : 1));
      const sig = (k) => abi.strip0x(signDigest(digest, k).sig);
      const V = `verifyBlock(bytes32,uint256,uint256,bytes32,bytes)`;
      await expectRevert(metis, store, V, [...fields, '0x' + sig(sorted[0]) + sig(sorted[1])], 'TooFewAttestations(uint256,uint256)', word(2) + word(3));
      await expectRevert(metis, store, V, [...fields, '0x' + sig(sorted[0]) + sig(sorted[1]) + sig(sorted[1])], 'DuplicateAttester(address)', word(big(addr(sorted[1]))));
      await expectRevert(metis, store, V, [...fields, '0x' + sig(sorted[1]) + sig(sorted[0]) + sig(sorted[2])], 'SignersNotSorted(uint256)', word(1));
      const outsider = KEYS[6];
      const withOutsider = [sorted[0], sorted[1], outsider].sort((a, b) => (big(addr(a)) < big(addr(b)) ? -1 : 1));
      await expectRevert(metis, store, V, [...fields, '0x' + withOutsider.map(sig).join('')], 'NotACommitteeMember(address)', word(big(addr(outsider))));
      const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
      const s0 = signDigest(digest, sorted[2]);
      const high = abi.strip0x(s0.r) + (N - big(s0.s)).toString(16).padStart(64, '0') + (s0.v === 27 ? '1c' : '1b');
      await expectRevert(metis, store, V, [...fields, '0x' + sig(sorted[0]) + sig(sorted[1]) + high], 'SignatureMalleable(uint256)', word(2));
      const badV = sig(sorted[2]).slice(0, 128) + '01';
      await expectRevert(metis, store, V, [...fields, '0x' + sig(sorted[0]) + sig(sorted[1]) + badV], 'InvalidSignatureV(uint256,uint8)', word(2) + word(1));
      await expectRevert(metis, store, V, [...fields, '0x' + sig(sorted[0]) + sig(sorted[1]).slice(2)], 'InvalidSignaturesLength(uint256)', word(129));
      // The signatures cover every field: another timestamp recovers other signers.
      await expectRevert(metis, store, V, [fields[0], fields[1], fields[2] + 1, fields[3], quorum(digest, KEYS.slice(0, 3))], 'NotACommitteeMember(address)');
      // A stored attestation is needed when no signatures are given.
      await expectRevert(metis, store, V, [...fields, '0x'], 'UnknownGoatBlock(bytes32)', abi.strip0x(gb.block.hash));
      // A quorum for another deployment (same committee, other contract) is refused here.
      const other = await metis.deploy('GoatHeaderStore', ['address[]', 'uint256', 'uint256'], [members, 3, 2345]);
      const foreign = await metis.call(other, HASH_BLOCK, fields);
      await expectRevert(metis, store, V, [...fields, quorum(foreign, KEYS.slice(0, 3))], 'NotACommitteeMember(address)');
      // And the same for another GOAT chain id.
      const testnet = await metis.deploy('GoatHeaderStore', ['address[]', 'uint256', 'uint256'], [members, 3, 48816]);
      assert((await metis.call(testnet, HASH_BLOCK, fields)) !== digest, 'GOAT chain id in the digest');
    });

    await test('attestBlock stores a 3-of-5 attestation for reuse', async () => {
      const digest = await metis.call(store, HASH_BLOCK, fields);
      const receipt = await metis.send(store, ATTEST, [...fields, quorum(digest, [KEYS[4], KEYS[0], KEYS[2]])]);
      gas('GoatHeaderStore.attestBlock (3-of-5)', receipt);
      eq(big(await metis.call(store, 'isKnown(bytes32)', [gb.block.hash])), 1n, 'known');
      eq(await metis.call(store, 'attestation(bytes32)', [gb.block.hash]),
        keccakHex(abi.encode(['uint256', 'uint256', 'bytes32'], [gb.number, gb.timestamp, gb.block.receiptsRoot])), 'commitment');
      await metis.call(store, 'verifyBlock(bytes32,uint256,uint256,bytes32,bytes)', [...fields, '0x']);
      await expectRevert(metis, store, 'verifyBlock(bytes32,uint256,uint256,bytes32,bytes)', [fields[0], fields[1], fields[2], hex(rand32()), '0x'], 'UnknownGoatBlock(bytes32)');
      await expectRevert(metis, store, ATTEST, [...fields, quorum(digest, KEYS.slice(0, 3))], 'BlockAlreadyAttested(bytes32)');
    });

    await test('committee update: signed by the current committee, nonce in order, deadline enforced', async () => {
      const newMembers = KEYS.slice(3, 8).map(addr);
      const UPD = 'updateCommittee(address[],uint256,uint256,uint256,bytes)';
      const HASH = 'hashCommitteeUpdate(address[],uint256,uint256,uint256)';
      const now = Number(big((await metis.rpc('eth_getBlockByNumber', ['latest', false])).timestamp));
      const deadline = now + 600;
      const digest = await metis.call(store, HASH, [newMembers, 4, 0, deadline]);
      await expectRevert(metis, store, UPD, [newMembers, 4, 1, deadline, quorum(digest, KEYS.slice(0, 3))], 'BadCommitteeNonce(uint256,uint256)');
      await expectRevert(metis, store, UPD, [newMembers, 4, 0, deadline, quorum(digest, KEYS.slice(5, 8))], 'NotACommitteeMember(address)');
      // An update whose deadline passed cannot be submitted, even correctly signed.
      const stale = now - 1;
      await expectRevert(metis, store, UPD, [newMembers, 4, 0, stale, quorum(await metis.call(store, HASH, [newMembers, 4, 0, stale]), KEYS.slice(0, 3))],
        'UpdateExpired(uint256,uint256)');
      // The deadline is signed: moving it breaks the signatures.
      await expectRevert(metis, store, UPD, [newMembers, 4, 0, deadline + 1, quorum(digest, KEYS.slice(0, 3))], 'NotACommitteeMember(address)');
      await expectRevert(metis, store, UPD, [[newMembers[0], newMembers[0]], 1, 0, deadline,
        quorum(await metis.call(store, HASH, [[newMembers[0], newMembers[0]], 1, 0, deadline]), KEYS.slice(0, 3))], 'DuplicateMember(address)');
      await metis.send(store, UPD, [newMembers, 4, 0, deadline, quorum(digest, KEYS.slice(0, 3))]);
      const c = abi.words(await metis.call(store, 'committee()'));
      eq(big(c[1]), 4n, 'threshold');
      eq(big(c[2]), 1n, 'nonce');
      eq(big(await metis.call(store, 'isCommitteeMember(address)', [members[0]])), 0n, 'old member out');
      eq(big(await metis.call(store, 'isCommitteeMember(address)', [newMembers[4]])), 1n, 'new member in');
      await expectRevert(metis, store, UPD, [newMembers, 4, 0, deadline, quorum(digest, KEYS.slice(0, 3))], 'BadCommitteeNonce(uint256,uint256)');
    });
  }

  // ----------------------------------------------------------------------------------
  // PaymentSettlement
  // ----------------------------------------------------------------------------------

  async function settleSuite(metis, goat) {
    console.log('PaymentSettlement');
    const { address: client, checkpoint } = await t.deployRegtestClient(metis, 1000);
    const members = KEYS.slice(0, 5).map(addr);
    const store = await metis.deploy('GoatHeaderStore', ['address[]', 'uint256', 'uint256'], [members, 3, 2345]);
    const PS_TYPES = ['address', 'address', 'uint256', 'uint8', 'uint256'];
    const settlement = await metis.deploy('PaymentSettlement', PS_TYPES, [client, store, 6, 1, 2345]);
    const pass = await metis.deploy('AccessPass', ['address', 'address'], [settlement, addr(KEYS[5])]);
    const merchantKey = KEYS[5];
    const merchant = addr(merchantKey);
    const FAR = 4_000_000_000;

    const sign = async (terms, key = merchantKey, contract = settlement) => {
      const digest = await metis.call(contract, HASH_TERMS, [termsTuple(terms)]);
      return signDigest(digest, key).sig;
    };

    // ---- Bitcoin chain on the light client ----
    let tip = { hash: checkpoint.hash, time: checkpoint.time };
    const extend = async (count, salt) => {
      const hs = btc.mineChain(tip, count, t.REGTEST_BITS, { salt });
      await metis.send(client, t.SUBMIT, [hex(Buffer.concat(hs.map((h) => h.header)))]);
      tip = hs[hs.length - 1];
      return hs;
    };
    await extend(50, 100);
    let salt = 200;
    /** Mines a block holding `txs` (positions 1..n among `count`), submits it with 5 confirmations. */
    const btcBlock = async (txs, count = txs.length + 1) => {
      const coinbase = btc.coinbaseTx(0, `gmrelay ${salt}`);
      const txids = [btc.dsha256(coinbase), ...txs.map(btc.dsha256)];
      while (txids.length < count) txids.push(rand32());
      const time = tip.time + 600;
      const block = btc.mine({ prev: tip.hash, merkleRoot: btc.merkleRoot(txids), time, bits: t.REGTEST_BITS });
      block.time = time;
      const conf = btc.mineChain(block, 5, t.REGTEST_BITS, { salt: salt++ });
      await metis.send(client, t.SUBMIT, [hex(Buffer.concat([block, ...conf].map((h) => h.header)))]);
      tip = conf[4];
      return {
        block,
        conf,
        tuple: [proofHeaders(block, conf), hex(btc.sha256(coinbase)), hex(btc.merkleBranch(txids, 0))],
        branch: (i) => hex(btc.merkleBranch(txids, i + 1)),
      };
    };
    const payeeScript = '0x0014' + '33'.repeat(20);
    const btcTx = (ref, outputs, { opReturn = true } = {}) => {
      const outs = outputs.map(([value, script]) => ({ value: BigInt(value), script: Buffer.from(abi.strip0x(script), 'hex') }));
      if (opReturn) outs.splice(1, 0, { value: 0n, script: Buffer.concat([Buffer.from('6a20', 'hex'), Buffer.from(abi.strip0x(ref), 'hex')]) });
      outs.push({ value: 98_765n, script: Buffer.from('5120' + 'ab'.repeat(32), 'hex') });
      return btc.serializeTx({ inputs: [{ txid: rand32(), vout: 1, script: Buffer.alloc(0) }], outputs: outs });
    };
    const btcTerms = (over = {}) => ({ merchant, ref: hex(rand32()), rail: 0, payee: payeeScript, amount: 50_000, expiry: FAR, ...over });
    const btcPayment = async (terms, tx, blk, i, signature) => [termsTuple(terms), signature ?? await sign(terms), hex(tx), i + 1, blk.branch(i)];
    const settleOne = (blk, payment) => [[[blk.tuple, [payment]]]];

    await test('deployment checks what the settlement trusts (light client network, GOAT chain)', async () => {
      const bad = await metis.revertDeploy('PaymentSettlement', PS_TYPES, [client, store, 6, 0, 2345]);
      expectError(bad, 'LightClientNetwork(uint8,uint8,uint256)', word(0) + word(1) + word(btc.REGTEST_POW_LIMIT));
      expectError(await metis.revertDeploy('PaymentSettlement', PS_TYPES, [client, store, 6, 2, 2345]), 'LightClientNetwork(uint8,uint8,uint256)');
      expectError(await metis.revertDeploy('PaymentSettlement', PS_TYPES, [client, store, 6, 1, 48816]), 'GoatChainMismatch(uint256,uint256)', word(48816) + word(2345));
      expectError(await metis.revertDeploy('PaymentSettlement', PS_TYPES, [client, store, 0, 1, 2345]), 'InvalidConfirmations()');
      eq(big(await metis.call(settlement, 'btcNetwork()')), 1n, 'btcNetwork');
      eq(big(await metis.call(settlement, 'goatChainId()')), 2345n, 'goatChainId');
      eq(big(await metis.call(settlement, 'powLimitOf(uint8)', [0])), btc.MAINNET_POW_LIMIT, 'mainnet pow limit');
    });

    await test('signed terms: the EIP-712 digest binds contract and chain', async () => {
      const terms = btcTerms();
      eq(await metis.call(settlement, HASH_TERMS, [termsTuple(terms)]), termsDigest(terms, 1088, settlement), 'hashTerms');
      assert(termsDigest(terms, 1, settlement) !== termsDigest(terms, 1088, settlement), 'chain id in the digest');
    });

    await test('Bitcoin, signed invoice: one payment settles once (block + 5 compact headers)', async () => {
      const terms = btcTerms();
      const tx = btcTx(terms.ref, [[50_000, payeeScript]]);
      const blk = await btcBlock([tx], 3000);
      const payment = await btcPayment(terms, tx, blk, 0);
      const receipt = await metis.send(settlement, SETTLE_BTC, settleOne(blk, payment));
      gas('PaymentSettlement.settleBtc, signed invoice, 1 payment (3,000-tx block, 6 headers)', receipt);
      const id = invoiceIdFor(merchant, terms.ref);
      eq(big(await metis.call(settlement, 'isSettled(bytes32)', [id])), 1n, 'settled');
      const ev = logsOf(receipt, SETTLED_EVENT);
      eq(ev.length, 1, 'one InvoiceSettled');
      eq(ev[0].topics[1], id, 'event id');
      eq(ev[0].topics[2], '0x' + word(big(merchant)), 'event merchant');
      await expectRevert(metis, settlement, SETTLE_BTC, settleOne(blk, payment), 'AlreadySettled(bytes32)', abi.strip0x(id));
    });

    await test('Bitcoin rejections: merchant signature, changed terms, other contract or chain, expiry, ref, amount, payee', async () => {
      const terms = btcTerms({ expiry: FAR });
      const tx = btcTx(terms.ref, [[50_000, payeeScript]]);
      const blk = await btcBlock([tx]);
      const id = invoiceIdFor(merchant, terms.ref);
      const attempt = async (over, sig, error, args) => {
        const tm = { ...terms, ...over };
        await expectRevert(metis, settlement, SETTLE_BTC, settleOne(blk, await btcPayment(tm, tx, blk, 0, sig)), error, args);
      };
      const signedBy = await sign(terms, KEYS[6]);
      await attempt({}, signedBy, 'InvalidMerchantSignature(bytes32,address)', abi.strip0x(id) + word(big(merchant)));
      await attempt({}, '0x', 'InvalidMerchantSignature(bytes32,address)');
      const good = await sign(terms);
      await attempt({ amount: 1 }, good, 'InvalidMerchantSignature(bytes32,address)');
      await attempt({ serviceId: hex(rand32()) }, good, 'InvalidMerchantSignature(bytes32,address)');
      // A signature made for another PaymentSettlement, or for this one on another chain.
      const twin = await metis.deploy('PaymentSettlement', PS_TYPES, [client, store, 6, 1, 2345]);
      await attempt({}, await sign(terms, merchantKey, twin), 'InvalidMerchantSignature(bytes32,address)');
      await attempt({}, signDigest(termsDigest(terms, 1, settlement), merchantKey).sig, 'InvalidMerchantSignature(bytes32,address)');
      // High-s twin of a good signature.
      const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
      const g = abi.strip0x(good);
      const twinS = '0x' + g.slice(0, 64) + (N - big('0x' + g.slice(64, 128))).toString(16).padStart(64, '0') + (g.slice(128) === '1b' ? '1c' : '1b');
      await attempt({}, twinS, 'InvalidMerchantSignature(bytes32,address)');
      // Expiry is judged by the payment's block time.
      const late = { ...terms, expiry: blk.block.time - 1 };
      await expectRevert(metis, settlement, SETTLE_BTC, settleOne(blk, await btcPayment(late, tx, blk, 0)),
        'PaidAfterExpiry(bytes32,uint256,uint64)', abi.strip0x(id) + word(blk.block.time) + word(blk.block.time - 1));
      const otherRef = { ...terms, ref: hex(rand32()) };
      await expectRevert(metis, settlement, SETTLE_BTC, settleOne(blk, await btcPayment(otherRef, tx, blk, 0)), 'WrongRef(bytes32,bytes32)',
        abi.strip0x(otherRef.ref) + abi.strip0x(terms.ref));
      const dearer = { ...terms, amount: 50_001 };
      await expectRevert(metis, settlement, SETTLE_BTC, settleOne(blk, await btcPayment(dearer, tx, blk, 0)), 'AmountTooLow(uint256,uint256)', word(50_000) + word(50_001));
      const elsewhere = { ...terms, payee: '0x0014' + '44'.repeat(20) };
      await expectRevert(metis, settlement, SETTLE_BTC, settleOne(blk, await btcPayment(elsewhere, tx, blk, 0)), 'WrongPayee()');
      const goatRail = { ...terms, rail: 1 };
      await expectRevert(metis, settlement, SETTLE_BTC, settleOne(blk, await btcPayment(goatRail, tx, blk, 0)), 'WrongRail(uint8,uint8)', word(0) + word(1));
      // Light-client and Merkle errors come through unchanged.
      const wrongIndex = await btcPayment(terms, tx, blk, 0);
      wrongIndex[3] = 0;
      await expectRevert(metis, settlement, SETTLE_BTC, settleOne(blk, wrongIndex), 'MerkleRootMismatch(bytes32,bytes32)');
      const short = [[[blk.tuple[0].slice(0, 2 + 2 * (80 + 48 * 4)), blk.tuple[1], blk.tuple[2]], [await btcPayment(terms, tx, blk, 0)]]];
      await expectRevert(metis, settlement, SETTLE_BTC, [short], 'UnknownHeader(bytes32)');
      // Nothing above settled it.
      eq(big(await metis.call(settlement, 'isSettled(bytes32)', [id])), 0n, 'still open');
    });

    await test('Bitcoin: a payment split over two outputs to the payee settles (60k + 40k for 100k)', async () => {
      const terms = btcTerms({ amount: 100_000 });
      const tx = btcTx(terms.ref, [[60_000, payeeScript], [40_000, payeeScript]]);
      const blk = await btcBlock([tx]);
      const receipt = await metis.send(settlement, SETTLE_BTC, settleOne(blk, await btcPayment(terms, tx, blk, 0)));
      const ev = logsOf(receipt, SETTLED_EVENT)[0];
      eq(big(abi.words(ev.data)[5]), 100_000n, 'amount = sum of the outputs');
      const none = btcTerms();
      const noOpReturn = btcTx(none.ref, [[50_000, payeeScript]], { opReturn: false });
      const blk2 = await btcBlock([noOpReturn]);
      await expectRevert(metis, settlement, SETTLE_BTC, settleOne(blk2, await btcPayment(none, noOpReturn, blk2, 0)), 'MissingOpReturn()');
    });

    await test('Bitcoin: confirmations counted on the light client', async () => {
      const terms = btcTerms();
      const tx = btcTx(terms.ref, [[50_000, payeeScript]]);
      const coinbase = btc.coinbaseTx(0, 'few');
      const txids = [btc.dsha256(coinbase), btc.dsha256(tx)];
      const block = btc.mine({ prev: tip.hash, merkleRoot: btc.merkleRoot(txids), time: tip.time + 600, bits: t.REGTEST_BITS });
      block.time = tip.time + 600;
      const conf = btc.mineChain(block, 5, t.REGTEST_BITS, { salt: 999 });
      await metis.send(client, t.SUBMIT, [hex(Buffer.concat([block, conf[0]].map((h) => h.header)))]);
      const tuple = [proofHeaders(block, [conf[0]]), hex(btc.sha256(coinbase)), hex(btc.merkleBranch(txids, 0))];
      const payment = [termsTuple(terms), await sign(terms), hex(tx), 1, hex(btc.merkleBranch(txids, 1))];
      await expectRevert(metis, settlement, SETTLE_BTC, [[[tuple, [payment]]]], 'InsufficientConfirmations(bytes32,uint256,uint256)');
      await metis.send(client, t.SUBMIT, [hex(Buffer.concat(conf.slice(1).map((h) => h.header)))]);
      tip = conf[4];
      await metis.send(settlement, SETTLE_BTC, [[[tuple, [payment]]]]);
    });

    await test('on-chain invoices: created by the merchant, settled with matching terms, once in either form', async () => {
      const creator = metis.accounts[0];
      const terms = btcTerms({ merchant: creator });
      const id = invoiceIdFor(creator, terms.ref);
      await expectRevert(metis, settlement, CREATE, [termsTuple(btcTerms())], 'NotMerchant(address,address)');
      const created = await metis.send(settlement, CREATE, [termsTuple(terms)]);
      gas('PaymentSettlement.createInvoice (on-chain form, BTC)', created);
      eq(await metis.call(settlement, 'invoiceState(bytes32)', [id]), await metis.call(settlement, `termsHash(${TERMS})`, [termsTuple(terms)]), 'stored terms hash');
      await expectRevert(metis, settlement, CREATE, [termsTuple(terms)], 'InvoiceExists(bytes32)', abi.strip0x(id));
      for (const [over, error] of [[{ rail: 2 }, 'InvalidRail(uint8)'], [{ payee: '0x' }, 'InvalidPayee()'], [{ asset: creator }, 'InvalidAsset(address)'],
        [{ amount: 0 }, 'ZeroAmount()'], [{ expiry: 1 }, 'InvalidExpiry(uint64,uint256)'], [{ rail: 1, payee: '0x' + '11'.repeat(21), asset: creator }, 'InvalidPayee()']]) {
        await expectRevert(metis, settlement, CREATE, [termsTuple({ ...terms, ref: hex(rand32()), ...over })], error);
      }
      const tx = btcTx(terms.ref, [[50_000, payeeScript]]);
      const blk = await btcBlock([tx]);
      // Stored terms rule: other terms (even signed) do not match; no signature is needed.
      await expectRevert(metis, settlement, SETTLE_BTC, settleOne(blk, [termsTuple({ ...terms, amount: 1 }), '0x', hex(tx), 1, blk.branch(0)]), 'TermsMismatch(bytes32)');
      const receipt = await metis.send(settlement, SETTLE_BTC, settleOne(blk, [termsTuple(terms), '0x', hex(tx), 1, blk.branch(0)]));
      gas('PaymentSettlement.settleBtc, on-chain invoice, 1 payment (2-tx block, 6 headers)', receipt);
      eq(big(await metis.call(settlement, 'invoiceState(bytes32)', [id])), 1n, 'state settled');
      await expectRevert(metis, settlement, SETTLE_BTC, settleOne(blk, [termsTuple(terms), '0x', hex(tx), 1, blk.branch(0)]), 'AlreadySettled(bytes32)');
      // A signed invoice settled first blocks creating the same id on-chain.
      const signed = btcTerms();
      const tx2 = btcTx(signed.ref, [[50_000, payeeScript]]);
      const blk2 = await btcBlock([tx2]);
      await metis.send(settlement, SETTLE_BTC, settleOne(blk2, await btcPayment(signed, tx2, blk2, 0)));
      await expectRevert(metis, settlement, SETTLE_BTC, settleOne(blk2, await btcPayment(signed, tx2, blk2, 0)), 'AlreadySettled(bytes32)');
    });

    await test('ERC-1271 merchants: a contract wallet signs through its owner', async () => {
      const wallet = await metis.deploy('TestMerchantWallet', ['address'], [addr(KEYS[7])]);
      const terms = btcTerms({ merchant: wallet });
      const tx = btcTx(terms.ref, [[50_000, payeeScript]]);
      const blk = await btcBlock([tx]);
      await expectRevert(metis, settlement, SETTLE_BTC, settleOne(blk, await btcPayment(terms, tx, blk, 0, await sign(terms, KEYS[6]))), 'InvalidMerchantSignature(bytes32,address)');
      await metis.send(settlement, SETTLE_BTC, settleOne(blk, await btcPayment(terms, tx, blk, 0, await sign(terms, KEYS[7]))));
      eq(big(await metis.call(settlement, 'isSettled(bytes32)', [invoiceIdFor(wallet, terms.ref)])), 1n, 'settled');
    });

    await test('Bitcoin batch of 20 in one block, one bad item skipped and reported', async () => {
      const all = [];
      for (let i = 0; i < 20; i++) {
        const terms = btcTerms();
        all.push({ terms, tx: btcTx(terms.ref, [[i === 7 ? 49_999 : 50_000, payeeScript]]) });
      }
      const blk = await btcBlock(all.map((p) => p.tx), 3000);
      const payments = [];
      for (let i = 0; i < 20; i++) payments.push(await btcPayment(all[i].terms, all[i].tx, blk, i));
      eq(big(await metis.call(settlement, SETTLE_BTC, [[[blk.tuple, payments]]])), 19n, 'settled count');
      // Too little gas: the whole batch reverts (BatchOutOfGas when a step runs out), it
      // never returns having skipped payments for want of gas, so a gas estimate never
      // settles on a limit that skips them.
      let outOfGas = 0;
      for (let limit = 300_000; limit <= 1_300_000; limit += 100_000) {
        const r = await metis.rpc('eth_call', [{ from: metis.accounts[0], to: settlement, gas: '0x' + limit.toString(16), data: calldata(SETTLE_BTC, [[[blk.tuple, payments]]]) }, 'latest'])
          .then((ret) => ({ settled: big(ret) }), (e) => ({ error: e.data }));
        if (r.settled !== undefined) eq(r.settled, 19n, `settled count with ${limit} gas`);
        if (r.error && String(r.error).startsWith(abi.selector('BatchOutOfGas()'))) outOfGas++;
      }
      assert(outOfGas > 0, 'some limit reverts with BatchOutOfGas');
      const receipt = await metis.send(settlement, SETTLE_BTC, [[[blk.tuple, payments]]]);
      const used = gas('PaymentSettlement.settleBtc, batch of 20 signed invoices in one block (1 skipped)', receipt, 20);
      eq(logsOf(receipt, SETTLED_EVENT).length, 19, '19 settled');
      const skipped = logsOf(receipt, SKIPPED_EVENT);
      eq(skipped.length, 1, 'one skipped');
      eq(skipped[0].topics[1], invoiceIdFor(merchant, all[7].terms.ref), 'skipped id');
      const w = abi.words(skipped[0].data);
      eq(big(w[1]), 7n, 'item index');
      expectError('0x' + abi.strip0x(skipped[0].data).slice(64 * 4, 64 * 4 + 8 + 128), 'AmountTooLow(uint256,uint256)', word(49_999) + word(50_000));
      assert(used > 0, 'gas');
      // The good ones cannot settle again; the bad one is still open.
      eq(big(await metis.call(settlement, SETTLE_BTC, [[[blk.tuple, [payments[0], payments[1]]]]])), 0n, 'nothing new');
      eq(big(await metis.call(settlement, 'isSettled(bytes32)', [invoiceIdFor(merchant, all[7].terms.ref)])), 0n, 'bad one open');
    });

    await test('service hooks: AccessPass unlocks; a reverting or gas-burning hook does not undo the settlement', async () => {
      const holder = addr(KEYS[7]);
      const sid = await metis.call(pass, 'serviceIdFor(address,uint48,uint48)', [holder, 5, 0]);
      const terms = btcTerms({ service: pass, serviceId: sid });
      const tx = btcTx(terms.ref, [[50_000, payeeScript]]);
      const blk = await btcBlock([tx]);
      const receipt = await metis.send(settlement, SETTLE_BTC, settleOne(blk, await btcPayment(terms, tx, blk, 0)));
      gas('PaymentSettlement.settleBtc, signed, with the AccessPass hook', receipt);
      const p = abi.words(await metis.call(pass, 'passOf(address)', [holder]));
      eq(big(p[0]), 5n, 'five calls credited');
      eq(big(await metis.call(pass, 'hasAccess(address)', [holder])), 1n, 'access');
      // Hooks that revert, burn all their gas, or belong to another merchant (AccessPass refuses).
      const reverting = await metis.deploy('TestHook', ['uint256'], [1]);
      const burning = await metis.deploy('TestHook', ['uint256'], [2]);
      const foreign = { key: KEYS[6], service: pass, serviceId: sid };
      for (const [service, key] of [[reverting, merchantKey], [burning, merchantKey], [foreign.service, foreign.key]]) {
        const tm = btcTerms({ merchant: addr(key), service, serviceId: sid });
        const tx2 = btcTx(tm.ref, [[50_000, payeeScript]]);
        const blk2 = await btcBlock([tx2]);
        const pay = await btcPayment(tm, tx2, blk2, 0, await sign(tm, key));
        if (service === burning) {
          // Too little gas for the hook's allowance: the whole settlement reverts.
          const data = await metis.rpc('eth_call', [{ from: metis.accounts[0], to: settlement, gas: '0x' + (150_000).toString(16), data: calldata(SETTLE_BTC, settleOne(blk2, pay)) }, 'latest'])
            .then(() => null, (e) => e.data);
          expectError(data, 'InsufficientGasForService(uint256)');
        }
        const r = await metis.send(settlement, SETTLE_BTC, settleOne(blk2, pay));
        const id = invoiceIdFor(addr(key), tm.ref);
        eq(logsOf(r, HOOK_FAILED_EVENT).length, 1, 'ServiceCallFailed');
        eq(big(await metis.call(settlement, 'invoiceState(bytes32)', [id])), 2n, 'state: settled, hook failed');
        eq(big(await metis.call(settlement, 'isSettled(bytes32)', [id])), 1n, 'settled');
        if (service === burning) gas('PaymentSettlement.settleBtc, signed, hook burning its 100k gas', r);
      }
      eq(big(abi.words(await metis.call(pass, 'passOf(address)', [holder]))[0]), 5n, 'a stranger credited nothing');
      // A batch whose hooks cannot all get their gas reverts whole (never a silent skip).
      const pair = [btcTerms({ service: pass, serviceId: sid }), btcTerms({ service: pass, serviceId: sid })];
      const txs = pair.map((tm) => btcTx(tm.ref, [[50_000, payeeScript]]));
      const blk3 = await btcBlock(txs);
      const batch = [[[blk3.tuple, [await btcPayment(pair[0], txs[0], blk3, 0), await btcPayment(pair[1], txs[1], blk3, 1)]]]];
      const short = await metis.rpc('eth_call', [{ from: metis.accounts[0], to: settlement, gas: '0x' + (250_000).toString(16), data: calldata(SETTLE_BTC, batch) }, 'latest'])
        .then(() => null, (e) => e.data);
      expectError(short, 'BatchOutOfGas()');
      const both = await metis.send(settlement, SETTLE_BTC, batch);
      eq(logsOf(both, SETTLED_EVENT).length, 2, 'both settled with the estimated gas');
      eq(big(abi.words(await metis.call(pass, 'passOf(address)', [holder]))[0]), 15n, 'two more grants');
      // Spending calls.
      await metis.rpc('anvil_impersonateAccount', [holder]);
      await metis.rpc('anvil_setBalance', [holder, '0x56bc75e2d63100000']);
      await metis.send(pass, 'use(address)', [holder], holder);
      eq(big(abi.words(await metis.call(pass, 'passOf(address)', [holder]))[0]), 14n, 'one call spent');
      await expectRevert(metis, pass, 'use(address)', [holder], 'NotAllowed(address)');
      await expectRevert(metis, pass, 'onInvoiceSettled(bytes32,address,address,uint256,bytes32)', [ZERO32, merchant, holder, 1, sid], 'NotSettlement(address)');
    });

    // ---- GOAT ----
    const token = await goat.deploy('TestStablecoin', ['string', 'string', 'string'], ['USD Coin', 'USDC', '2']);
    const fake = await goat.deploy('TestStablecoin', ['string', 'string', 'string'], ['USD Coin', 'USDC', '2']);
    const payerKey = KEYS[6];
    await goat.send(token, 'mint(address,uint256)', [addr(payerKey), 1_000_000_000]);
    await goat.send(fake, 'mint(address,uint256)', [addr(payerKey), 1_000_000_000]);
    const goatPayee = goat.accounts[8].toLowerCase();
    const goatTerms = (over = {}) => ({ merchant, ref: hex(rand32()), rail: 1, payee: goatPayee, asset: token, amount: 1_000_000, expiry: FAR, ...over });
    const committee = [KEYS[1], KEYS[3], KEYS[4]];
    const goatOne = async (gb, terms, index, { signature, keys = committee, logIndex = 0 } = {}) => {
      const blk = await goatBlockTuple(metis, store, gb, keys);
      return [[[blk, gb.proof(index).map(hex), [[termsTuple(terms), signature ?? await sign(terms), index, '0x', logIndex]]]]];
    };

    await test('GOAT, signed invoice, attestation inline: one payment in one transaction', async () => {
      for (const fillers of [0, 60]) {
        const terms = goatTerms();
        const gb = await goatBlock(goat, token, [{ payerKey, payee: goatPayee, value: 1_000_000, nonce: terms.ref }], { fillers });
        const args = await goatOne(gb, terms, gb.indexes[0]);
        const receipt = await metis.send(settlement, SETTLE_GOAT, args);
        gas(`PaymentSettlement.settleGoat, signed invoice, inline 3-of-5 attestation (${fillers + 1}-tx block, ${gb.proof(gb.indexes[0]).length} trie nodes)`, receipt);
        const ev = logsOf(receipt, SETTLED_EVENT);
        eq(ev.length, 1, 'InvoiceSettled');
        eq(ev[0].topics[1], invoiceIdFor(merchant, terms.ref), 'id');
        await expectRevert(metis, settlement, SETTLE_GOAT, args, 'AlreadySettled(bytes32)');
      }
    });

    await test('GOAT rejections: attestation, ref, token, amount, payee, failed tx, proof, expiry', async () => {
      const terms = goatTerms();
      const gb = await goatBlock(goat, token, [{ payerKey, payee: goatPayee, value: 1_000_000, nonce: terms.ref }], { fillers: 20 });
      const i = gb.indexes[0];
      const attempt = async (args, error, argsHex) => expectRevert(metis, settlement, SETTLE_GOAT, args, error, argsHex);
      // The committee: too few, an outsider, none stored.
      await attempt(await goatOne(gb, terms, i, { keys: committee.slice(0, 2) }), 'TooFewAttestations(uint256,uint256)');
      await attempt(await goatOne(gb, terms, i, { keys: [KEYS[1], KEYS[3], KEYS[6]] }), 'NotACommitteeMember(address)');
      await attempt(await goatOne(gb, terms, i, { keys: [] }), 'UnknownGoatBlock(bytes32)');
      const id = invoiceIdFor(merchant, terms.ref);
      await attempt(await goatOne(gb, { ...terms, ref: hex(rand32()) }, i), 'WrongRef(bytes32,bytes32)');
      await attempt(await goatOne(gb, { ...terms, asset: fake }, i), 'WrongToken(address,address)');
      await attempt(await goatOne(gb, { ...terms, amount: 1_000_001 }, i), 'AmountTooLow(uint256,uint256)', word(1_000_000) + word(1_000_001));
      await attempt(await goatOne(gb, { ...terms, payee: goat.accounts[9].toLowerCase() }, i), 'WrongPayee()');
      await attempt(await goatOne(gb, { ...terms, expiry: gb.timestamp - 1 }, i), 'PaidAfterExpiry(bytes32,uint256,uint64)');
      await attempt(await goatOne(gb, { ...terms, rail: 0 }, i), 'WrongRail(uint8,uint8)', word(1) + word(0));
      await attempt(await goatOne(gb, terms, i, { signature: await sign(terms, KEYS[6]) }), 'InvalidMerchantSignature(bytes32,address)');
      await attempt(await goatOne(gb, terms, i, { logIndex: 1 }), 'LogNotFound(uint256)', word(2));
      await attempt(await goatOne(gb, terms, i, { logIndex: 2 }), 'LogNotFound(uint256)', word(2));
      // Proof errors: another index, a missing node, an extra node, a tampered leaf.
      const good = await goatOne(gb, terms, i);
      const withNodes = (nodes) => [[[good[0][0][0], nodes, good[0][0][2]]]];
      const proof = gb.proof(i).map(hex);
      await attempt([[[good[0][0][0], proof, [[termsTuple(terms), await sign(terms), i + 1, '0x', 0]]]]], 'MptKeyNotFound(uint256)');
      await attempt(withNodes(proof.slice(0, -1)), 'MptMissingNode(uint256)');
      await attempt(withNodes([...proof, proof[0]]), 'MptUnusedNodes(uint256,uint256)');
      const tampered = Buffer.from(abi.strip0x(proof[proof.length - 1]), 'hex');
      tampered[tampered.length - 1] ^= 1;
      await attempt(withNodes([...proof.slice(0, -1), hex(tampered)]), 'MptNodeHashMismatch(uint256)');
      // A failed payment transaction.
      const t2 = goatTerms({ amount: 5 });
      const failed = await goatBlock(goat, token, [{ payerKey, payee: goatPayee, value: 5, nonce: t2.ref, fail: true }]);
      await attempt(await goatOne(failed, t2, failed.indexes[0]), 'ReceiptFailed(uint256)', word(0));
      eq(big(await metis.call(settlement, 'isSettled(bytes32)', [id])), 0n, 'still open');
      // Finally it settles.
      await metis.send(settlement, SETTLE_GOAT, good);
    });

    await test('GOAT, stored attestation: attestBlock once, then payments with no signatures', async () => {
      const terms = goatTerms();
      const gb = await goatBlock(goat, token, [{ payerKey, payee: goatPayee, value: 1_000_000, nonce: terms.ref }], { fillers: 5 });
      const digest = await metis.call(store, HASH_BLOCK, [gb.block.hash, gb.number, gb.timestamp, gb.block.receiptsRoot]);
      await metis.send(store, ATTEST, [gb.block.hash, gb.number, gb.timestamp, gb.block.receiptsRoot, quorum(digest, committee)]);
      const receipt = await metis.send(settlement, SETTLE_GOAT, await goatOne(gb, terms, gb.indexes[0], { keys: [] }));
      gas('PaymentSettlement.settleGoat, signed invoice, stored attestation (6-tx block)', receipt);
    });

    await test('GOAT batch of 20 in one block: shared attestation and trie nodes, one bad item skipped', async () => {
      const all = [];
      for (let i = 0; i < 20; i++) all.push(goatTerms({ amount: 1000 }));
      const gb = await goatBlock(goat, token, all.map((tm, i) => ({ payerKey, payee: i === 11 ? goat.accounts[9].toLowerCase() : goatPayee, value: 1000, nonce: tm.ref })));
      const { pool, paths } = nodePool(gb, gb.indexes);
      const blk = await goatBlockTuple(metis, store, gb, committee);
      const payments = [];
      for (let i = 0; i < 20; i++) payments.push([termsTuple(all[i]), await sign(all[i]), gb.indexes[i], paths[i], 0]);
      eq(big(await metis.call(settlement, SETTLE_GOAT, [[[blk, pool, payments]]])), 19n, 'settled count');
      const receipt = await metis.send(settlement, SETTLE_GOAT, [[[blk, pool, payments]]]);
      gas(`PaymentSettlement.settleGoat, batch of 20 signed invoices in one block (inline attestation, ${pool.length} shared nodes, 1 skipped)`, receipt, 20);
      eq(logsOf(receipt, SETTLED_EVENT).length, 19, '19 settled');
      const skipped = logsOf(receipt, SKIPPED_EVENT);
      eq(skipped.length, 1, 'one skipped');
      expectError('0x' + abi.strip0x(skipped[0].data).slice(64 * 4, 64 * 4 + 8), 'WrongPayee()');
      // A bad block skips its group and reports it; the other group settles.
      const extra = goatTerms({ amount: 7 });
      const gb2 = await goatBlock(goat, token, [{ payerKey, payee: goatPayee, value: 7, nonce: extra.ref }]);
      const badBlock = [...(await goatBlockTuple(metis, store, gb2, committee))];
      badBlock[2] += 1;
      const groups = [[badBlock, gb2.proof(gb2.indexes[0]).map(hex), [[termsTuple(extra), await sign(extra), gb2.indexes[0], '0x', 0]]],
        [await goatBlockTuple(metis, store, gb2, committee), gb2.proof(gb2.indexes[0]).map(hex), [[termsTuple(extra), await sign(extra), gb2.indexes[0], '0x', 0]]]];
      const r2 = await metis.send(settlement, SETTLE_GOAT, [groups]);
      const sk = logsOf(r2, SKIPPED_EVENT);
      eq(sk.length, 1, 'bad group skipped');
      eq(big(abi.words(sk[0].data)[1]), (1n << 256n) - 1n, 'group marker');
      eq(logsOf(r2, SETTLED_EVENT).length, 1, 'good group settled');
    });

    await test('GOAT payment unlocks the AccessPass for the payer (no holder named)', async () => {
      const sid = await metis.call(pass, 'serviceIdFor(address,uint48,uint48)', [ZERO20, 0, 3600]);
      const terms = goatTerms({ service: pass, serviceId: sid });
      const gb = await goatBlock(goat, token, [{ payerKey, payee: goatPayee, value: 1_000_000, nonce: terms.ref }]);
      const receipt = await metis.send(settlement, SETTLE_GOAT, await goatOne(gb, terms, gb.indexes[0]));
      gas('PaymentSettlement.settleGoat, signed, inline attestation, with the AccessPass hook', receipt);
      eq(big(await metis.call(pass, 'hasAccess(address)', [addr(payerKey)])), 1n, 'payer has access');
      const until = big(abi.words(await metis.call(pass, 'passOf(address)', [addr(payerKey)]))[1]);
      assert(until > big(gb.timestamp), 'timed access');
    });

    await test('batch entry points are closed to outsiders', async () => {
      const terms = goatTerms();
      await expectRevert(metis, settlement, `settleGoatStep(uint256,uint256,(${GOAT_BLOCK},bytes[],${GOAT_PAYMENT}[])[])`, [0, 0, []], 'OnlySelf()');
      await expectRevert(metis, settlement, `settleBtcStep(uint256,uint256,(bytes32,bytes32,uint256,uint256),(${BTC_BLOCK},${BTC_PAYMENT}[])[])`,
        [0, 0, [ZERO32, ZERO32, 0, 0], []], 'OnlySelf()');
      await expectRevert(metis, settlement, SETTLE_GOAT, [[]], 'EmptyBatch()');
    });
  }

  return { goatSuite, settleSuite };
};
