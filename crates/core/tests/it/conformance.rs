//! Encodings and hashes are consensus: these digests pin them. A change here is a hard fork and
//! must be made on purpose (update the digest in the same commit that explains why).

use poi_core::address::Address;
use poi_core::bank::BankMsg;
use poi_core::block::{Block, BlockHeader, tx_root};
use poi_core::tx::{Msg, TxBody};

use crate::chain::key;

fn fixed_tx() -> poi_core::tx::Tx {
    let signer = key(42);
    TxBody {
        chain_id: "poi-conformance".into(),
        signer: Address::from_public_key(&signer.verifying_key()),
        nonce: 7,
        fee: 12_345,
        msg: Msg::Bank(BankMsg::Transfer {
            to: Address([3; 32]),
            amount: 1_000_000_000,
        }),
    }
    .sign(&signer)
}

#[test]
fn transaction_encoding_and_hash_are_pinned() {
    let tx = fixed_tx();
    // 4+15 chain id, 32 signer, 8 nonce, 16 fee, 1+1+32+16 transfer, 64 signature.
    assert_eq!(tx.encode().len(), 189);
    assert_eq!(
        hex::encode(tx.hash()),
        "cc3e2f190fd6cb21eda95a8acc630815af1d198b8be01f43d6c74262532d3719"
    );
}

#[test]
fn block_hash_and_address_form_are_pinned() {
    let tx = fixed_tx();
    let header = BlockHeader {
        chain_id: "poi-conformance".into(),
        height: 9,
        parent_hash: [1; 32],
        proposer: Address([2; 32]),
        timestamp_ms: 1_767_225_600_000,
        tx_count: 1,
        tx_root: tx_root(std::slice::from_ref(&tx)),
        state_root: [4; 32],
        events_root: [5; 32],
        view: 11,
        seeds: vec![poi_core::beacon::BeaconSeed {
            epoch: 0,
            view: 3,
            signature: [6; 48],
        }],
    };
    let block = Block {
        header,
        txs: vec![tx],
    };
    assert_eq!(
        hex::encode(block.hash()),
        "76f25e2fe973288ff216beab9cc2c99eb5769f29ecf5806e62ab046e01fcf0b0"
    );
    assert_eq!(
        Address([2; 32]).to_string(),
        "poi1qgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqeufh6y"
    );
}
