//! GOAT through its own consensus: commits made by the generator
//! (secp256k1 validators, GOAT-shaped tx0) are judged alike by
//! tendermint-rs's light-client verifier (gmrelay's off-chain check) and by
//! GoatLightClient on a Metis anvil (Shanghai): what one accepts the other
//! accepts, what one refuses the other refuses.
//!
//! Every refusal is asserted by name on both sides: the off-chain
//! `ConsensusError` (its variant, and tendermint-rs's reason in its words)
//! and the contract's custom error, named from the revert data's selector by
//! the bindings' `GoatLightClientErrors` (`decode_revert` does not know
//! GoatLightClient). Refusals are `eth_call`s and change nothing, so one
//! contract judges every case; the one accepted block is submitted for real
//! last.

mod common;

use alloy::primitives::{Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolError;
use common::anvil::TestAnvil;
use gmrelay::goat::consensus::testgen::{block, payload, set, time, tx0, wrap, Val};
use gmrelay::goat::consensus::{
    data_hash, verify, ConsensusError, LightBlock, Trusted, Verified, MSG_NEW_ETH_BLOCK,
};
use gmrelay::metis::bindings::GoatLightClient;
use gmrelay::metis::goatlc::{self, SubmitArgs};
use tendermint::block::CommitSig;
use tendermint::vote::{Type, ValidatorIndex, Vote};
use tendermint::Signature;
use tendermint_light_client_verifier::options::Options;

const CHAIN: &str = "goat-devnet";

/// An encoded commit's head: round (4) ‖ parts total (4) ‖ parts hash (32).
const HEAD: usize = 40;
/// A vote record: index (1) ‖ seconds (8) ‖ nanos (4) ‖ r (32) ‖ s | parity << 255 (32).
const VOTE: usize = 77;
/// Where s (with the parity in its top bit) starts in a vote record.
const S_AT: usize = 45;
/// The order n of secp256k1.
const SECP256K1_N: &str = "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn options() -> Options {
    Options {
        trust_threshold: Default::default(),
        trusting_period: std::time::Duration::from_secs(36 * 3600),
        clock_drift: std::time::Duration::from_secs(10),
    }
}

/// An EVM header (RLP) and its hash, as tx0's parent.
fn evm_header(number: u64, ts: u64) -> (Bytes, B256, alloy::consensus::Header) {
    let h = alloy::consensus::Header {
        number,
        timestamp: ts,
        receipts_root: B256::repeat_byte(0xee),
        gas_limit: 30_000_000,
        ..Default::default()
    };
    (alloy_rlp::encode(&h).into(), h.hash_slow(), h)
}

/// GoatLightClient's refusal: the custom error's name (from the revert
/// data's selector) and the revert data.
#[derive(Debug)]
struct Refusal {
    name: String,
    data: Bytes,
}

/// GoatLightClient's verdict on `submit(a)`, as an `eth_call` (nothing changes).
async fn on_chain<P: Provider>(
    lc: &GoatLightClient::GoatLightClientInstance<P>,
    a: &SubmitArgs,
) -> Result<(), Refusal> {
    let e = match lc
        .submit(
            a.header.clone(),
            a.commit.clone(),
            a.tx0.clone(),
            a.tx0_proof.clone(),
            a.evm_header.clone(),
            a.next_validators.clone(),
        )
        .call()
        .await
    {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let data = e.as_revert_data().unwrap_or_default();
    let name = data
        .get(..4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .and_then(GoatLightClient::GoatLightClientErrors::name_by_selector)
        .map_or_else(
            || format!("(not a GoatLightClient error: {e})"),
            str::to_string,
        );
    Err(Refusal { name, data })
}

/// Asserts that GoatLightClient refused with the custom error `want`;
/// returns the revert data.
fn contract_refuses(case: &str, got: Result<(), Refusal>, want: &str) -> Bytes {
    match got {
        Err(r) if r.name == want => r.data,
        Err(r) => panic!(
            "{case}: GoatLightClient refused with {} (revert data {:?}), {want} expected",
            r.name, r.data
        ),
        Ok(()) => panic!("{case}: GoatLightClient accepted it, {want} expected"),
    }
}

/// Asserts that tendermint-rs (through `verify`) refused with an error
/// `off` recognizes and GoatLightClient with the custom error `on`; returns
/// the revert data.
fn both_refuse(
    case: &str,
    off_chain: Result<Verified, ConsensusError>,
    off: impl Fn(&ConsensusError) -> bool,
    on_chain: Result<(), Refusal>,
    on: &str,
) -> Bytes {
    match off_chain {
        Err(e) => assert!(
            off(&e),
            "{case}: tendermint-rs refused for another reason: {e}"
        ),
        Ok(v) => panic!(
            "{case}: tendermint-rs accepted it (header {})",
            v.header_hash
        ),
    }
    contract_refuses(case, on_chain, on)
}

/// Whether `e` is tendermint-rs's verifier refusing with `reason` in its words.
fn verifier_says(e: &ConsensusError, reason: &str) -> bool {
    matches!(e, ConsensusError::Verifier { reason: r, .. } if r.contains(reason))
}

/// Whether `e` refuses tx0 for being a bank send, not a MsgNewEthBlock.
fn tx0_is_a_send(e: &ConsensusError) -> bool {
    matches!(e, ConsensusError::Tx0 { what, .. } if what.contains("MsgSend"))
}

/// The revert data decoded as the custom error `E` it names.
fn decoded<E: SolError>(data: &Bytes) -> E {
    E::abi_decode(data).expect("the revert data decodes as the error it names")
}

/// The signature (r ‖ s) of the commit vote at position `at` of `b`'s commit.
fn signature_at(b: &LightBlock, at: usize) -> [u8; 64] {
    match &b.signed_header.commit.signatures[at] {
        CommitSig::BlockIdFlagCommit {
            signature: Some(s), ..
        } => s.as_bytes().try_into().expect("a 64-byte signature"),
        other => panic!("position {at} holds no commit vote: {other:?}"),
    }
}

/// `b` with the commit vote at position `at` carrying `rs` instead.
fn with_signature(b: &LightBlock, at: usize, rs: [u8; 64]) -> LightBlock {
    let mut b = b.clone();
    match &mut b.signed_header.commit.signatures[at] {
        CommitSig::BlockIdFlagCommit { signature, .. } => {
            *signature = Signature::new(rs).expect("64 bytes");
        }
        other => panic!("position {at} holds no commit vote: {other:?}"),
    }
    b
}

/// `rs` with `s` instead of its s.
fn with_s(rs: &[u8; 64], s: U256) -> [u8; 64] {
    let mut out = *rs;
    out[32..].copy_from_slice(&s.to_be_bytes::<32>());
    out
}

/// The s field (s | parity << 255) of vote record `i` of an encoded commit.
fn s_field(commit: &[u8], i: usize) -> U256 {
    let at = HEAD + i * VOTE + S_AT;
    U256::from_be_slice(&commit[at..at + 32])
}

/// An encoded commit with vote record `i`'s s field replaced by `field`.
fn with_s_field(commit: &[u8], i: usize, field: U256) -> Vec<u8> {
    let mut c = commit.to_vec();
    let at = HEAD + i * VOTE + S_AT;
    c[at..at + 32].copy_from_slice(&field.to_be_bytes::<32>());
    c
}

/// `a` with `commit` as its encoded commit.
fn with_commit(a: &SubmitArgs, commit: Vec<u8>) -> SubmitArgs {
    SubmitArgs {
        commit: commit.into(),
        ..a.clone()
    }
}

/// `b` with the commit vote at position `at` replaced by its validator's
/// (one of `vals`) precommit for nil, as CometBFT records it
/// (`BlockIdFlagNil`); also the 77-byte record a relayer would write if it
/// passed that nil vote as a commit vote (with its true y parity).
fn with_nil_vote(b: &LightBlock, at: usize, vals: &[Val]) -> (LightBlock, Vec<u8>) {
    let mut b = b.clone();
    let (address, timestamp) = match &b.signed_header.commit.signatures[at] {
        CommitSig::BlockIdFlagCommit {
            validator_address,
            timestamp,
            ..
        } => (*validator_address, *timestamp),
        other => panic!("position {at} holds no commit vote: {other:?}"),
    };
    let val = vals
        .iter()
        .find(|v| v.address() == address)
        .expect("the voter is one of the validators");
    let vote = Vote {
        vote_type: Type::Precommit,
        height: b.signed_header.commit.height,
        round: b.signed_header.commit.round,
        block_id: None,
        timestamp: Some(timestamp),
        validator_address: address,
        validator_index: ValidatorIndex::try_from(at as u32).expect("a small index"),
        signature: None,
        extension: vec![],
        extension_signature: None,
    };
    let bytes = vote.into_signable_vec(b.signed_header.header.chain_id.clone());
    let (sig, recid) = val
        .key
        .sign_recoverable(&bytes)
        .expect("the validator signs its nil vote");
    let mut rs = [0u8; 64];
    rs.copy_from_slice(&sig.to_bytes());
    b.signed_header.commit.signatures[at] = CommitSig::BlockIdFlagNil {
        validator_address: address,
        timestamp,
        signature: Signature::new(rs).expect("64 bytes"),
    };
    let ns = timestamp.unix_timestamp_nanos();
    let mut record = vec![u8::try_from(at).expect("a small index")];
    record.extend_from_slice(&((ns / 1_000_000_000) as u64).to_be_bytes());
    record.extend_from_slice(&((ns % 1_000_000_000) as u32).to_be_bytes());
    record.extend_from_slice(&rs[..32]);
    let mut s = [0u8; 32];
    s.copy_from_slice(&rs[32..]);
    s[0] |= u8::from(recid.is_y_odd()) << 7;
    record.extend_from_slice(&s);
    (b, record)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_off_chain_verifier_and_the_contract_judge_commits_alike() {
    let metis = TestAnvil::start(&["--hardfork", "shanghai"]).await;
    let provider =
        gmrelay::goat::devnet::wallet_provider(&metis.url(), gmrelay::goat::devnet::RELAYER_KEY)
            .unwrap();
    let vals: Vec<Val> = (1..=3).map(|i| Val::new(i, 10)).collect();
    let t0 = now() - 60;
    // The trusted block: height 10.
    let b10 = block(
        CHAIN,
        10,
        t0,
        None,
        &vals,
        &vals,
        &[0, 1, 2],
        vec![tx0(&payload(1), MSG_NEW_ETH_BLOCK)],
    );
    let h10 = &b10.signed_header.header;
    let (secs, nanos) = (h10.time.unix_timestamp() as u64, 0u32);
    let lc = GoatLightClient::deploy(
        &provider,
        CHAIN.to_string(),
        U256::from(2345u64),
        10,
        secs,
        nanos,
        B256::from_slice(h10.hash().as_bytes()),
        B256::from_slice(h10.next_validators_hash.as_bytes()),
        goatlc::validators(&set(&vals)).unwrap(),
        U256::from(36 * 3600u64),
    )
    .await
    .expect("GoatLightClient deploys");
    let trusted = Trusted {
        chain_id: CHAIN.parse().unwrap(),
        height: 10u32.into(),
        time: h10.time,
        next_validators: set(&vals),
        next_validators_hash: h10.next_validators_hash,
    };
    let last = Some(b10.signed_header.commit.block_id);
    let (rlp, parent, evm) = evm_header(41, t0 as u64);
    let mut p = payload(42);
    p.parent_hash = parent;
    p.block_number = 42;

    // Each case: a block for height 11; both must agree.
    let others: Vec<Val> = (7..=9).map(|i| Val::new(i, 10)).collect();
    let at11 = |chain: &str, set: &[Val], signers: &[usize], extra: usize| {
        let mut txs = vec![tx0(&p, MSG_NEW_ETH_BLOCK)];
        txs.extend((1..=extra).map(|i| vec![i as u8]));
        block(chain, 11, t0 + 3, last, set, set, signers, txs)
    };
    // A block for height 11 signed by all three, with these transactions.
    let at11_txs =
        |txs: Vec<Vec<u8>>| block(CHAIN, 11, t0 + 3, last, &vals, &vals, &[0, 1, 2], txs);
    let lc_now = time(now());
    let off_chain = |b: &LightBlock| verify(&trusted, b, &options(), lc_now);
    let args = |b: &LightBlock| {
        goatlc::submit_args(b, rlp.clone())
            .unwrap_or_else(|e| panic!("the relayer cannot encode height 11: {e}"))
    };

    // None: both accept; Some((tendermint-rs's reason, the contract's error)).
    type Case<'a> = (&'a str, LightBlock, Option<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            "2 of 3 equal validators (not > 2/3)",
            at11(CHAIN, &vals, &[0, 1], 0),
            Some(("insufficient signers overlap", "InsufficientVotingPower")),
        ),
        (
            "another chain id",
            at11("goat-other", &vals, &[0, 1, 2], 0),
            // The contract hashes the header and the votes under its own
            // chain id: the signatures are of other bytes.
            Some(("chain-id mismatch", "BadVoteSignature")),
        ),
        (
            // Also the stale-set case: a commit by a set other than the
            // trusted next one, whatever set it is.
            "a set that is not the trusted one",
            at11(CHAIN, &others, &[0, 1, 2], 0),
            Some(("invalid next validator set", "ValidatorSetMismatch")),
        ),
        (
            "all three sign, tx0 among 5 transactions",
            at11(CHAIN, &vals, &[0, 1, 2], 4),
            None,
        ),
    ];
    for (name, b, want) in &cases {
        let off = off_chain(b);
        let on = on_chain(&lc, &args(b)).await;
        match want {
            None => {
                assert!(off.is_ok(), "{name}: tendermint-rs says {off:?}");
                assert!(on.is_ok(), "{name}: GoatLightClient says {on:?}");
            }
            Some((reason, error)) => {
                both_refuse(name, off, |e| verifier_says(e, reason), on, error);
            }
        }
    }

    // A good block of one transaction, all three signing: the cases below
    // break it one way each.
    let full = at11(CHAIN, &vals, &[0, 1, 2], 0);
    let good = args(&full);
    assert!(
        off_chain(&full).is_ok(),
        "the good block verifies off-chain"
    );
    assert!(
        on_chain(&lc, &good).await.is_ok(),
        "the good block verifies on-chain"
    );

    // High s. The first vote record's validator, by its commit position.
    let k = usize::from(good.commit[HEAD]);
    let rs = signature_at(&full, k);
    let n: U256 = SECP256K1_N.parse().expect("secp256k1's order");
    let half_n = n >> 1usize;
    let top = U256::from(1u8) << 255usize;
    let twin = n - U256::from_be_slice(&rs[32..]);
    assert_eq!(
        k256::ecdsa::Signature::from_slice(&with_s(&rs, twin))
            .expect("(r, n - s) parses")
            .normalize_s(),
        Some(k256::ecdsa::Signature::from_slice(&rs).expect("(r, s) parses")),
        "(r, n - s) is the malleable twin of the vote"
    );
    // The twin (r, n - s): a valid ECDSA signature that only the low-s rule
    // refuses. tendermint-rs: k256 verifies low s only. The contract's vote
    // record cannot even carry it: n - s >= 2^255 overlaps the parity bit,
    // so the contract reads s = n - s - 2^255 (below n/2, no HighS) with the
    // twin's parity, which recovers some other key.
    assert!(
        twin >= top,
        "n - s of a low-s signature is >= 2^255 (but for a 2^-128 chance)"
    );
    let flipped = (s_field(&good.commit, 0) & top) ^ top;
    let data = both_refuse(
        "the high-s twin of a vote",
        off_chain(&with_signature(&full, k, with_s(&rs, twin))),
        |e| verifier_says(e, "failed to verify signature"),
        on_chain(
            &lc,
            &with_commit(
                &good,
                with_s_field(&good.commit, 0, (twin & !top) | flipped),
            ),
        )
        .await,
        "BadVoteSignature",
    );
    assert_eq!(
        decoded::<GoatLightClient::BadVoteSignature>(&data).validatorIndex,
        U256::from(k)
    );
    // An s above n/2 that the record can carry (n/2 < s < 2^255): the
    // contract refuses it as HighS before recovering anything; k256 refuses
    // a high s whatever else is wrong with the signature.
    let high = half_n + U256::from(1u8);
    let data = both_refuse(
        "a vote with s > n/2",
        off_chain(&with_signature(&full, k, with_s(&rs, high))),
        |e| verifier_says(e, "failed to verify signature"),
        on_chain(
            &lc,
            &with_commit(
                &good,
                with_s_field(&good.commit, 0, high | (s_field(&good.commit, 0) & top)),
            ),
        )
        .await,
        "HighS",
    );
    assert_eq!(
        decoded::<GoatLightClient::HighS>(&data).validatorIndex,
        U256::from(k)
    );

    // One validator counted twice: 2 of 3 signed (20 of 30, not > 2/3); a
    // second copy of one vote would make it 30. A CometBFT commit is
    // positional, so off-chain the copy goes at the absent validator's
    // position (its signature is as valid there: the sign bytes carry no
    // index); tendermint-rs finds the same address twice. gmrelay's encoder
    // will not write it (the vote at that position recovers to another key
    // than that validator's); the contract is given the record twice.
    let two = at11(CHAIN, &vals, &[0, 1], 0);
    let sigs = &two.signed_header.commit.signatures;
    let absent = sigs
        .iter()
        .position(|s| matches!(s, CommitSig::BlockIdFlagAbsent))
        .expect("one validator did not sign");
    let voter = sigs
        .iter()
        .position(|s| matches!(s, CommitSig::BlockIdFlagCommit { .. }))
        .expect("two validators signed");
    let mut twice = two.clone();
    twice.signed_header.commit.signatures[absent] = sigs[voter].clone();
    let encoded = goatlc::submit_args(&twice, rlp.clone());
    assert!(
        matches!(encoded, Err(goatlc::EncodeError::Vote { index, .. }) if index == absent),
        "the relayer refuses to encode a vote at another validator's position: {encoded:?}"
    );
    let a2 = args(&two);
    let first = usize::from(a2.commit[HEAD]);
    let doubled = [&a2.commit[..], &a2.commit[HEAD..HEAD + VOTE]].concat();
    let data = both_refuse(
        "one validator's vote twice",
        off_chain(&twice),
        |e| verifier_says(e, "duplicate validator"),
        on_chain(&lc, &with_commit(&a2, doubled)).await,
        "DuplicateVote",
    );
    assert_eq!(
        decoded::<GoatLightClient::DuplicateVote>(&data).validatorIndex,
        U256::from(first)
    );

    // A nil vote: the last validator precommitted nil. Three of equal power,
    // two for the block: 20 of 30 is not > 2/3. tendermint-rs does not count
    // nil votes; gmrelay's encoder leaves them out (the contract counts
    // 20 of 30); a relayer that passes the nil vote as a commit vote gives
    // the contract a signature over another block id (none).
    let at = full.signed_header.commit.signatures.len() - 1;
    let (nil, nil_record) = with_nil_vote(&full, at, &vals);
    let honest = args(&nil);
    assert_eq!(
        honest.commit.len(),
        HEAD + 2 * VOTE,
        "the encoder passes commit votes only"
    );
    let data = both_refuse(
        "a nil vote, left out",
        off_chain(&nil),
        |e| verifier_says(e, "insufficient signers overlap"),
        on_chain(&lc, &honest).await,
        "InsufficientVotingPower",
    );
    let power = decoded::<GoatLightClient::InsufficientVotingPower>(&data);
    assert_eq!(
        (power.signedPower, power.totalPower),
        (U256::from(20u8), U256::from(30u8))
    );
    let counted = [&honest.commit[..], &nil_record[..]].concat();
    let data = both_refuse(
        "a nil vote passed as a commit vote",
        off_chain(&nil),
        |e| verifier_says(e, "insufficient signers overlap"),
        on_chain(&lc, &with_commit(&honest, counted)).await,
        "BadVoteSignature",
    );
    assert_eq!(
        decoded::<GoatLightClient::BadVoteSignature>(&data).validatorIndex,
        U256::from(at)
    );

    // tx0 of another message type.
    let other_type = "/goat.goat.v1.MsgOther";
    let b = at11_txs(vec![tx0(&p, other_type)]);
    let data = both_refuse(
        "tx0 of another type URL",
        off_chain(&b),
        |e| matches!(e, ConsensusError::Tx0 { what, .. } if what.contains(other_type)),
        on_chain(&lc, &args(&b)).await,
        "UnexpectedTypeUrl",
    );
    assert!(
        decoded::<GoatLightClient::UnexpectedTypeUrl>(&data)
            .typeUrl
            .starts_with(other_type.as_bytes()),
        "the contract names the type URL it found"
    );

    // The MsgNewEthBlock transaction at index 1, behind a bank send at index
    // 0. Passed as the block is (tx0 = the send): not a MsgNewEthBlock.
    // Passed as the relayer might forge it (the MsgNewEthBlock with its own
    // Merkle path, whose aunt is the send's leaf): the contract's path
    // always goes left, so it proves index 0 only and the root differs.
    let send = wrap(&[], "/cosmos.bank.v1beta1.MsgSend");
    let behind = at11_txs(vec![send, tx0(&p, MSG_NEW_ETH_BLOCK)]);
    both_refuse(
        "MsgNewEthBlock at index 1 (tx0 is a send)",
        off_chain(&behind),
        tx0_is_a_send,
        on_chain(&lc, &args(&behind)).await,
        "UnexpectedTypeUrl",
    );
    let forged = SubmitArgs {
        tx0: behind.txs[1].clone().into(),
        tx0_proof: vec![B256::from_slice(data_hash(&behind.txs[..1]).as_bytes())],
        ..args(&behind)
    };
    both_refuse(
        "MsgNewEthBlock at index 1 with its own path",
        off_chain(&behind),
        tx0_is_a_send,
        on_chain(&lc, &forged).await,
        "DataHashMismatch",
    );

    // A path to data_hash that does not lead there. The contract: tx0 among
    // 5 transactions with one aunt altered. Off-chain there is no path (all
    // the transactions are hashed): one transaction altered, which alters
    // that aunt of the relayer's path too.
    let many = at11(CHAIN, &vals, &[0, 1, 2], 4);
    let mut altered = args(&many);
    assert_eq!(altered.tx0_proof.len(), 3, "5 transactions: 3 aunts");
    altered.tx0_proof[1].0[0] ^= 1;
    contract_refuses(
        "tx0's path with an aunt altered",
        on_chain(&lc, &altered).await,
        "DataHashMismatch",
    );
    let mut other_txs = many.clone();
    other_txs.txs[2] = b"a transaction the header does not commit to".to_vec();
    both_refuse(
        "transactions that do not hash to data_hash",
        off_chain(&other_txs),
        |e| matches!(e, ConsensusError::DataHash { count: 5, .. }),
        on_chain(&lc, &args(&other_txs)).await,
        "DataHashMismatch",
    );

    // The EVM header. Off-chain the consensus verdict does not involve it:
    // gmrelay takes a header by its hash only (the GOAT sync stores headers
    // under keccak256 of their RLP; the prover looks up payload.parent_hash),
    // so only the contract side is judged here, on a block both accept.
    let (wrong_rlp, wrong_hash, _) = evm_header(41, t0 as u64 + 1);
    assert_ne!(wrong_hash, parent);
    let data = contract_refuses(
        "an EVM header that is not tx0's parent",
        on_chain(
            &lc,
            &SubmitArgs {
                evm_header: wrong_rlp,
                ..good.clone()
            },
        )
        .await,
        "EvmHeaderMismatch",
    );
    let mismatch = decoded::<GoatLightClient::EvmHeaderMismatch>(&data);
    assert_eq!(
        (mismatch.parentHash, mismatch.headerHash),
        (parent, wrong_hash)
    );
    // The parent's header, but a payload number that is not its number + 1.
    let mut q = p;
    q.block_number = evm.number + 2;
    let b = at11_txs(vec![tx0(&q, MSG_NEW_ETH_BLOCK)]);
    assert!(
        off_chain(&b).is_ok(),
        "the EVM block number is not a consensus check"
    );
    contract_refuses(
        "a payload number that is not the parent's + 1",
        on_chain(&lc, &args(&b)).await,
        "EvmNumberMismatch",
    );

    // The accepted block, submitted for real: the EVM block is final on Metis.
    let (_, accepted, _) = &cases[3];
    let a = goatlc::submit_args(accepted, rlp.clone()).unwrap();
    let receipt = lc
        .submit(
            a.header,
            a.commit,
            a.tx0,
            a.tx0_proof,
            a.evm_header,
            a.next_validators,
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    lc.verifyBlock(
        parent,
        U256::from(evm.number),
        U256::from(evm.timestamp),
        evm.receipts_root,
        Bytes::new(),
    )
    .call()
    .await
    .expect("the parent EVM block is proven final");
    assert!(
        lc.verifyBlock(
            parent,
            U256::from(evm.number + 1),
            U256::from(evm.timestamp),
            evm.receipts_root,
            Bytes::new()
        )
        .call()
        .await
        .is_err(),
        "another number must not verify"
    );
}
