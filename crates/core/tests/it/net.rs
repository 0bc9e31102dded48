//! A chain under test: blocks of signed transactions executed over the in-memory reference
//! state, with the supply and every module invariant audited after each block. The harness of
//! the market and Proof-of-Intelligence tests; each adds its own helpers in its file.
//!
//! Block `h` is proposed in view `h`. With [`Net::with_beacon`] the chain has a randomness
//! beacon whose group key the harness holds, and every block carries the seeds the chain
//! wants, signed as consensus would sign them, like an honest proposer's.

use std::collections::BTreeMap;

use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::bls12381::primitives::{group::Private, ops, variant::MinSig};
use ed25519_dalek::SigningKey;
use poi_core::Address;
use poi_core::TxError;
use poi_core::beacon::{self, BeaconSeed};
use poi_core::block::BlockContext;
use poi_core::chain::{Chain, Mode};
use poi_core::event::TxOutcome;
use poi_core::market::{self, MarketMsg};
use poi_core::module::ExecContext;
use poi_core::params::{PARAMS_KEY, Params};
use poi_core::state::{MemState, Overlay, WriteSet};
use poi_core::tx::{Msg, Tx, TxBody};

use crate::chain::{CHAIN, addr, ctx, genesis_state, key};

/// Balance of every funded account at genesis.
pub(crate) const START: u128 = 100_000_000_000_000;

/// State, height, the next nonce and the fees paid per account.
pub(crate) struct Net {
    pub(crate) chain: Chain,
    pub(crate) state: MemState,
    pub(crate) height: u64,
    nonces: BTreeMap<Address, u64>,
    fees: BTreeMap<Address, u128>,
    fee: u128,
    beacon: Option<Private>,
}

/// The namespace the harness's beacon signs seeds under.
pub(crate) const SEED_NAMESPACE: &[u8] = b"poi-test_SEED";

/// The test beacon's group key: a fixed scalar, so runs are reproducible.
pub(crate) fn beacon_key() -> Private {
    let mut scalar = [0u8; 32];
    scalar[0] = 0x1d;
    scalar[31] = 0x2f;
    Private::decode(scalar.to_vec()).expect("a scalar below the group order is a key")
}

/// `seed(epoch, view)` signed with `key`.
pub(crate) fn sign_seed(key: &Private, epoch: u64, view: u64) -> BeaconSeed {
    let sig = ops::sign_message::<MinSig>(key, SEED_NAMESPACE, &beacon::seed_message(epoch, view));
    BeaconSeed {
        epoch,
        view,
        signature: sig.encode().as_ref().try_into().expect("48 bytes"),
    }
}

impl Net {
    /// `funded` accounts with [`START`] each, `params` in force, every transaction paying `fee`.
    pub(crate) fn new(funded: &[&SigningKey], params: Params, fee: u128) -> Self {
        let funded: Vec<(&SigningKey, u128)> = funded.iter().map(|k| (*k, START)).collect();
        let mut state = genesis_state(&funded);
        let mut writes = WriteSet::new();
        params.validate().expect("test params are valid");
        writes.insert(PARAMS_KEY.to_vec(), Some(borsh::to_vec(&params).unwrap()));
        state.apply(&writes);
        Self {
            chain: Chain::new(CHAIN),
            state,
            height: 0,
            nonces: BTreeMap::new(),
            fees: BTreeMap::new(),
            fee,
            beacon: None,
        }
    }

    /// Gives the chain a beacon ([`beacon_key`], [`SEED_NAMESPACE`]), as genesis would.
    pub(crate) fn with_beacon(mut self) -> Self {
        let key = beacon_key();
        let identity = ops::compute_public::<MinSig>(&key).encode();
        let genesis = poi_core::genesis::GenesisBeacon {
            identity: hex::encode(identity.as_ref()),
            seed_namespace: hex::encode(SEED_NAMESPACE),
            polynomial: String::new(),
        };
        let (identity, namespace) = genesis.decode().expect("the test beacon is valid");
        let record = poi_core::poi::beacon::Beacon {
            identity,
            seed_namespace: namespace,
            epoch: 0,
            seeds_recorded: 0,
            last_seed_view: 0,
        };
        let mut writes = WriteSet::new();
        writes.insert(
            poi_core::poi::beacon::BEACON_KEY.to_vec(),
            Some(borsh::to_vec(&record).unwrap()),
        );
        self.state.apply(&writes);
        self.beacon = Some(key);
        self
    }

    /// The seeds an honest proposer of the next block puts in it.
    pub(crate) fn wanted_seeds(&self) -> Vec<BeaconSeed> {
        let Some(key) = &self.beacon else {
            return Vec::new();
        };
        self.chain
            .wanted_seeds(&self.state, self.height + 1)
            .unwrap()
            .into_iter()
            .map(|(epoch, view)| sign_seed(key, epoch, view))
            .collect()
    }

    /// `msg` signed by `from` with its next nonce.
    pub(crate) fn tx(&mut self, from: &SigningKey, msg: Msg) -> Tx {
        let nonce = self.nonces.entry(addr(from)).or_default();
        let tx = TxBody {
            chain_id: CHAIN.into(),
            signer: addr(from),
            nonce: *nonce,
            fee: self.fee,
            msg,
        }
        .sign(from);
        *nonce += 1;
        *self.fees.entry(addr(from)).or_default() += self.fee;
        tx
    }

    /// Executes the next block with `txs`, audits, and returns each transaction's code.
    pub(crate) fn block(&mut self, txs: Vec<Tx>) -> Vec<String> {
        let seeds = self.wanted_seeds();
        self.block_with_seeds(txs, seeds).expect("block executes")
    }

    /// Executes the next block with `txs` and exactly `seeds`; audits. The block's error if it
    /// is invalid (then nothing changes).
    pub(crate) fn block_with_seeds(
        &mut self,
        txs: Vec<Tx>,
        seeds: Vec<BeaconSeed>,
    ) -> Result<Vec<String>, poi_core::chain::BlockError> {
        let mut block = ctx(self.height + 1);
        block.seeds = seeds;
        let out = self
            .chain
            .execute_block(&self.state, &block, txs, Mode::Verify)?;
        self.height += 1;
        self.state.apply(&out.writes);
        self.chain
            .audit(&self.state)
            .expect("supply and invariants hold");
        Ok(out
            .receipts
            .iter()
            .map(|r| match &r.outcome {
                TxOutcome::Success => "ok".to_string(),
                TxOutcome::Failed { code, .. } => code.clone(),
            })
            .collect())
    }

    /// One transaction in its own block; its code.
    pub(crate) fn send(&mut self, from: &SigningKey, msg: Msg) -> String {
        let tx = self.tx(from, msg);
        self.block(vec![tx]).remove(0)
    }

    /// One market message in its own block; its code.
    pub(crate) fn market(&mut self, from: &SigningKey, msg: MarketMsg) -> String {
        self.send(from, Msg::Market(msg))
    }

    /// `n` blocks without transactions.
    pub(crate) fn empty_blocks(&mut self, n: u64) {
        for _ in 0..n {
            self.block(Vec::new());
        }
    }

    /// The balance of `who`.
    pub(crate) fn balance_of(&self, who: &Address) -> u128 {
        poi_core::bank::account(&self.state, who)
            .unwrap()
            .map_or(0, |a| a.balance)
    }

    /// Market job `id`, which must exist.
    pub(crate) fn job(&self, id: u64) -> market::Job {
        market::job(&self.state, id).unwrap().expect("job exists")
    }

    /// Fees `who` has paid so far.
    pub(crate) fn fee(&self, who: &SigningKey) -> u128 {
        self.fees.get(&addr(who)).copied().unwrap_or(0)
    }

    /// Runs `f` as another module would call into one (PoI driving the market), in a layer
    /// that is kept on success and discarded on error, at the next height; then audits. The
    /// error's code on failure.
    pub(crate) fn hook(
        &mut self,
        f: impl FnOnce(&mut ExecContext<'_, '_>) -> Result<(), TxError>,
    ) -> Result<(), String> {
        self.height += 1;
        self.hook_now(f)
    }

    /// [`Net::hook`] at the current height.
    pub(crate) fn hook_now(
        &mut self,
        f: impl FnOnce(&mut ExecContext<'_, '_>) -> Result<(), TxError>,
    ) -> Result<(), String> {
        let params: Params = poi_core::state::read_borsh(&self.state, PARAMS_KEY)
            .unwrap()
            .expect("params in state");
        let block = BlockContext {
            height: self.height,
            timestamp_ms: 0,
            proposer: addr(&key(200)),
            view: self.height,
            seeds: Vec::new(),
        };
        let mut overlay = Overlay::new(&self.state);
        let mut events = Vec::new();
        let mut ctx = ExecContext {
            state: &mut overlay,
            block: &block,
            params: &params,
            events: &mut events,
        };
        let result = f(&mut ctx);
        match result {
            Ok(()) => overlay.commit_tx(),
            Err(_) => overlay.discard_tx(),
        }
        let writes = overlay.into_writes();
        self.state.apply(&writes);
        self.chain
            .audit(&self.state)
            .expect("supply and invariants hold");
        result.map_err(|e| e.code().to_string())
    }
}
