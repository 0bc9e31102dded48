//! Transactions: one canonical borsh encoding, signed with ed25519.
//!
//! # Format
//! `Tx = borsh(TxBody) | signature [u8; 64]`, where
//! `TxBody = chain_id String | signer [u8; 32] | nonce u64 | fee u128 | msg Msg`.
//! The signature covers `b"poi/tx/v1\0" | borsh(TxBody)`: the chain id, the signer's nonce, the fee
//! and the payload. The signer is the fee payer. The transaction hash is blake3 of the whole
//! encoding. Decoding is strict: no trailing bytes, and the bytes must re-encode identically, so
//! one transaction has exactly one encoding and one hash.
//!
//! # Signature rule
//! A signature is valid iff `ed25519_dalek::VerifyingKey::verify_strict` accepts it. Blocks are
//! checked with deterministic batch verification over fixed chunks (see
//! [`crate::limits::SIGNATURE_BATCH_TXS`]); a strictly valid signature always passes the batch
//! equation, and a failing chunk is re-checked one signature at a time.
//!
//! Stability: BETA; new messages are appended as new enum variants.

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rayon::prelude::*;

use crate::address::Address;
use crate::bank::BankMsg;
use crate::error::TxError;
use crate::limits::{SIGNATURE_BATCH_TXS, TX_BYTES_MAX};
use crate::market::MarketMsg;
use crate::poi::PoiMsg;
use crate::staking::StakingMsg;
use crate::token::Amount;

/// Domain separator prefixed to every signed transaction body.
pub const TX_SIGNING_DOMAIN: &[u8] = b"poi/tx/v1\0";

/// A 32-byte transaction hash (blake3 of the encoding).
pub type TxHash = [u8; 32];

/// A message: what the transaction asks a module to do. One variant per module.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Msg {
    /// A bank message (transfers).
    Bank(BankMsg),
    /// A staking message (bond, unbond, withdraw).
    Staking(StakingMsg),
    /// A marketplace message (providers and jobs).
    Market(MarketMsg),
    /// A Proof-of-Intelligence message (PoI jobs and their commitments). Appended last, so the
    /// encodings of the earlier variants are unchanged.
    Poi(PoiMsg),
    /// A governance message (proposals, votes, delegation). Appended last.
    Gov(crate::governance::GovMsg),
    /// A validator message (candidacy, evidence, unjail). Appended last.
    Validators(crate::validators::ValidatorsMsg),
}

/// The signed part of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxBody {
    /// Chain the transaction is meant for; replay across chains fails.
    pub chain_id: String,
    /// Signer and fee payer.
    pub signer: Address,
    /// The signer's next nonce; each nonce is used exactly once, in order.
    pub nonce: u64,
    /// Fee in base units paid by the signer, whether or not the message succeeds.
    pub fee: Amount,
    /// What to do.
    pub msg: Msg,
}

/// A signed transaction.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Tx {
    /// The signed body.
    pub body: TxBody,
    /// ed25519 signature over [`TX_SIGNING_DOMAIN`] and the borsh body.
    pub signature: [u8; 64],
}

impl TxBody {
    /// The exact bytes the signer signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut bytes = TX_SIGNING_DOMAIN.to_vec();
        self.serialize(&mut bytes)
            .expect("borsh encoding into a Vec cannot fail");
        bytes
    }

    /// Signs the body with `key`. The body's signer must be `key`'s address.
    pub fn sign(self, key: &SigningKey) -> Tx {
        assert_eq!(
            self.signer,
            Address::from_public_key(&key.verifying_key()),
            "signer mismatch"
        );
        let signature = key.sign(&self.signing_bytes()).to_bytes();
        Tx {
            body: self,
            signature,
        }
    }
}

impl Tx {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("borsh encoding into a Vec cannot fail")
    }

    /// Decodes one transaction, refusing oversized, trailing or non-canonical bytes.
    pub fn decode(bytes: &[u8]) -> Result<Tx, TxError> {
        if bytes.len() > TX_BYTES_MAX as usize {
            return Err(TxError::Oversized {
                size: bytes.len() as u64,
                max: TX_BYTES_MAX.into(),
            });
        }
        let tx: Tx = borsh::from_slice(bytes).map_err(|e| TxError::Malformed(e.to_string()))?;
        if tx.encode() != bytes {
            return Err(TxError::Malformed("non-canonical encoding".into()));
        }
        Ok(tx)
    }

    /// blake3 of the canonical encoding.
    pub fn hash(&self) -> TxHash {
        *blake3::hash(&self.encode()).as_bytes()
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> u64 {
        self.encode().len() as u64
    }

    /// Checks the signature alone (strict ed25519).
    pub fn verify_signature(&self) -> Result<(), TxError> {
        let bad = || TxError::BadSignature {
            signer: self.body.signer,
        };
        let key = VerifyingKey::from_bytes(self.body.signer.as_bytes()).map_err(|_| bad())?;
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(&self.body.signing_bytes(), &signature)
            .map_err(|_| bad())
    }
}

/// Verifies the signatures of `txs` in fixed chunks on all cores; returns one verdict per
/// transaction, `true` meaning the signature is valid.
pub fn verify_signatures(txs: &[Tx]) -> Vec<bool> {
    txs.par_chunks(SIGNATURE_BATCH_TXS as usize)
        .flat_map_iter(verify_chunk)
        .collect()
}

/// What can be computed for a block's transactions before its parent commits: signature
/// verdicts, hashes and encoded sizes. A node computes these for block N+1 on spare cores while
/// block N executes and commits, which takes them off the sequential path.
///
/// A verdict depends only on the transaction and its position among the block's transactions
/// (the fixed batches of [`verify_signatures`]). A signature that passes strict verification
/// ([`Tx::verify_signature`]) passes every batch it can be in, since a batch checks a random
/// linear combination of equations that each hold exactly; so for transactions that were
/// each strictly verified on admission, "all valid" is the verdict execution would compute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prechecks {
    verdicts: Vec<bool>,
    hashes: Vec<TxHash>,
    encoded_lens: Vec<u64>,
}

impl Prechecks {
    /// Verifies the signatures of `txs` in the block's order (see [`verify_signatures`]) and
    /// hashes them, on all cores of the current rayon pool.
    pub fn verify(txs: &[Tx]) -> Self {
        let (verdicts, (hashes, encoded_lens)) = rayon::join(
            || verify_signatures(txs),
            || txs.par_iter().map(hash_and_len).unzip(),
        );
        Self {
            verdicts,
            hashes,
            encoded_lens,
        }
    }

    /// Prechecks for transactions whose signatures each passed [`Tx::verify_signature`]
    /// already (the mempool admits nothing else).
    pub fn strictly_verified(txs: &[Tx]) -> Self {
        let (hashes, encoded_lens) = txs.par_iter().map(hash_and_len).unzip();
        Self {
            verdicts: vec![true; txs.len()],
            hashes,
            encoded_lens,
        }
    }

    /// Number of transactions covered.
    pub fn len(&self) -> usize {
        self.verdicts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.verdicts.is_empty()
    }

    /// The signature verdicts in transaction order, `true` meaning valid.
    pub fn verdicts(&self) -> &[bool] {
        &self.verdicts
    }

    /// `(signature valid, hash, encoded length)` of the transaction at `index`.
    pub fn get(&self, index: usize) -> Option<(bool, TxHash, u64)> {
        Some((
            *self.verdicts.get(index)?,
            *self.hashes.get(index)?,
            *self.encoded_lens.get(index)?,
        ))
    }
}

fn hash_and_len(tx: &Tx) -> (TxHash, u64) {
    let encoded = tx.encode();
    (*blake3::hash(&encoded).as_bytes(), encoded.len() as u64)
}

fn verify_chunk(chunk: &[Tx]) -> Vec<bool> {
    let mut keys = Vec::with_capacity(chunk.len());
    for tx in chunk {
        match VerifyingKey::from_bytes(tx.body.signer.as_bytes()) {
            Ok(key) if !key.is_weak() => keys.push(key),
            // A key that does not decode (or is weak) fails strict verification anyway.
            _ => {
                return chunk
                    .iter()
                    .map(|tx| tx.verify_signature().is_ok())
                    .collect();
            }
        }
    }
    let messages: Vec<Vec<u8>> = chunk.iter().map(|tx| tx.body.signing_bytes()).collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let signatures: Vec<Signature> = chunk
        .iter()
        .map(|tx| Signature::from_bytes(&tx.signature))
        .collect();
    if ed25519_dalek::verify_batch(&message_refs, &signatures, &keys).is_ok() {
        return vec![true; chunk.len()];
    }
    chunk
        .iter()
        .map(|tx| tx.verify_signature().is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn transfer(from: &SigningKey, nonce: u64) -> Tx {
        TxBody {
            chain_id: "poi-test".into(),
            signer: Address::from_public_key(&from.verifying_key()),
            nonce,
            fee: 10,
            msg: Msg::Bank(BankMsg::Transfer {
                to: Address([9; 32]),
                amount: 5,
            }),
        }
        .sign(from)
    }

    #[test]
    fn encoding_round_trips_and_is_strict() {
        let tx = transfer(&key(1), 0);
        let bytes = tx.encode();
        assert_eq!(Tx::decode(&bytes), Ok(tx.clone()));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(Tx::decode(&trailing), Err(TxError::Malformed(_))));
        assert!(matches!(
            Tx::decode(&bytes[..bytes.len() - 1]),
            Err(TxError::Malformed(_))
        ));
        let huge = vec![0u8; TX_BYTES_MAX as usize + 1];
        assert!(matches!(Tx::decode(&huge), Err(TxError::Oversized { .. })));
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let tx = transfer(&key(1), 0);
        assert!(tx.verify_signature().is_ok());
        for tamper in 0..4 {
            let mut bad = tx.clone();
            match tamper {
                0 => bad.body.nonce += 1,
                1 => bad.body.chain_id = "other".into(),
                2 => bad.body.fee += 1,
                _ => bad.signature[5] ^= 1,
            }
            assert_eq!(
                bad.verify_signature(),
                Err(TxError::BadSignature {
                    signer: tx.body.signer
                })
            );
        }
    }

    #[test]
    fn batch_verdicts_match_single_verification() {
        let mut txs: Vec<Tx> = (0..300)
            .map(|i| transfer(&key((i % 7) as u8 + 1), i))
            .collect();
        txs[17].signature[0] ^= 1;
        txs[250].body.nonce = 9999;
        let verdicts = verify_signatures(&txs);
        let single: Vec<bool> = txs.iter().map(|tx| tx.verify_signature().is_ok()).collect();
        assert_eq!(verdicts, single);
        assert_eq!(verdicts.iter().filter(|ok| !**ok).count(), 2);
    }
}
