//! The state seam: how the state machine reads committed state and stages writes.
//!
//! [`StateReader`] is implemented by `poi-store` (redb + JMT) and by [`MemState`] (genesis checks,
//! simulation, tests). Execution never writes to the reader: it stages writes in an [`Overlay`]
//! with two layers, the block's accepted writes and the current transaction's pending writes, so a
//! failed transaction is discarded whole and the block's write set is handed back to be committed
//! atomically.
//!
//! Invariant: a key is only ever written by the module that owns its prefix (see
//! [`crate::module`]).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use borsh::{BorshDeserialize, BorshSerialize};

use crate::error::StateError;

/// Staged changes: `None` deletes the key. Ordered, so iteration is deterministic.
pub type WriteSet = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Read access to committed state.
pub trait StateReader {
    /// The value stored under `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;

    /// Visits every key starting with `prefix` in ascending order until `visit` returns false.
    fn scan_prefix(
        &self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError>;
}

/// A plain in-memory state, the reference implementation of [`StateReader`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemState(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl MemState {
    /// Applies a write set.
    pub fn apply(&mut self, writes: &WriteSet) {
        for (key, value) in writes {
            match value {
                Some(value) => self.0.insert(key.clone(), value.clone()),
                None => self.0.remove(key),
            };
        }
    }
}

impl StateReader for MemState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.0.get(key).cloned())
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        for (key, value) in self.0.range(prefix.to_vec()..) {
            if !key.starts_with(prefix) || !visit(key, value) {
                break;
            }
        }
        Ok(())
    }
}

/// Values read from the base, remembered so each key is fetched from storage at most once per
/// block (and so the supply check knows every written key's value before the block).
pub type BaseReads = HashMap<Vec<u8>, Option<Vec<u8>>>;

/// Visits `prefix` keys of `base` with `layers` applied in order (later layers win), ascending.
///
/// Streams: the layers' entries under `prefix` are merged into the base scan as it goes, so a
/// visitor that stops early (the market reads the head of its queue) costs what it visited plus
/// the layers' writes under `prefix`, not the whole prefix.
fn scan_layered(
    base: &dyn StateReader,
    layers: &[&WriteSet],
    prefix: &[u8],
    visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Result<(), StateError> {
    let mut overrides: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
    for layer in layers {
        for (key, value) in layer.range(prefix.to_vec()..) {
            if !key.starts_with(prefix) {
                break;
            }
            overrides.insert(key.as_slice(), value.as_deref());
        }
    }
    let mut pending = overrides.into_iter().peekable();
    let mut stopped = false;
    base.scan_prefix(prefix, &mut |key, value| {
        // Layer entries that sort before this base key come first.
        while let Some((k, v)) = pending.next_if(|(k, _)| *k < key) {
            if let Some(v) = v
                && !visit(k, v)
            {
                stopped = true;
                return false;
            }
        }
        let value = match pending.next_if(|(k, _)| *k == key) {
            Some((_, None)) => return true,
            Some((_, Some(v))) => v,
            None => value,
        };
        if !visit(key, value) {
            stopped = true;
            return false;
        }
        true
    })?;
    if stopped {
        return Ok(());
    }
    for (key, value) in pending {
        if let Some(value) = value
            && !visit(key, value)
        {
            break;
        }
    }
    Ok(())
}

/// A write set layered over a state: the state a not-yet-committed block leaves behind.
pub struct Layered<'a> {
    base: &'a dyn StateReader,
    writes: &'a WriteSet,
}

impl<'a> Layered<'a> {
    /// `writes` applied over `base`.
    pub fn new(base: &'a dyn StateReader, writes: &'a WriteSet) -> Self {
        Self { base, writes }
    }
}

impl StateReader for Layered<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.writes.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.base.get(key),
        }
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        scan_layered(self.base, &[self.writes], prefix, visit)
    }
}

/// Staged writes over a [`StateReader`]: block layer plus transaction layer.
///
/// The block layer and the cache of base reads are hash maps: a block of 10,000 transfers reads
/// about 30,000 keys through them. Nothing depends on their order: the block's writes are
/// sorted when they are taken ([`Overlay::into_parts`]) and scans sort what they visit. (The
/// hasher's random seed only places entries in buckets; it cannot change a result, and it keeps
/// crafted keys from degrading lookups.)
pub struct Overlay<'a> {
    base: &'a dyn StateReader,
    block: HashMap<Vec<u8>, Option<Vec<u8>>>,
    tx: WriteSet,
    base_reads: RefCell<BaseReads>,
}

impl<'a> Overlay<'a> {
    /// An empty overlay over `base`.
    pub fn new(base: &'a dyn StateReader) -> Self {
        Self {
            base,
            block: HashMap::new(),
            tx: WriteSet::new(),
            base_reads: RefCell::default(),
        }
    }

    /// The committed state underneath.
    pub fn base(&self) -> &'a dyn StateReader {
        self.base
    }

    /// Reads through the transaction layer, then the block layer, then the base.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(value) = self.tx.get(key) {
            return Ok(value.clone());
        }
        if let Some(value) = self.block.get(key) {
            return Ok(value.clone());
        }
        self.base_value(key)
    }

    /// The value of `key` in the base state (before this block), cached.
    pub fn base_value(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(value) = self.base_reads.borrow().get(key) {
            return Ok(value.clone());
        }
        let value = self.base.get(key)?;
        self.base_reads
            .borrow_mut()
            .insert(key.to_vec(), value.clone());
        Ok(value)
    }

    /// Stages `value` under `key` in the transaction layer.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.tx.insert(key, Some(value));
    }

    /// Stages a deletion of `key` in the transaction layer.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.tx.insert(key, None);
    }

    /// Reads and borsh-decodes a value; a value that does not decode is a storage fault.
    pub fn get_borsh<T: BorshDeserialize>(&self, key: &[u8]) -> Result<Option<T>, StateError> {
        match self.get(key)? {
            None => Ok(None),
            Some(bytes) => decode(key, &bytes).map(Some),
        }
    }

    /// Borsh-encodes and stages a value.
    pub fn put_borsh<T: BorshSerialize>(&mut self, key: Vec<u8>, value: &T) {
        self.put(
            key,
            borsh::to_vec(value).expect("borsh encoding into a Vec cannot fail"),
        );
    }

    /// Keeps the current transaction's writes (moves them into the block layer).
    pub fn commit_tx(&mut self) {
        let staged = std::mem::take(&mut self.tx);
        self.block.extend(staged);
    }

    /// Drops the current transaction's writes.
    pub fn discard_tx(&mut self) {
        self.tx.clear();
    }

    /// The accepted writes of the block so far. Panics if a transaction is still open, because
    /// handing out a write set with a half-applied transaction would break atomicity.
    pub fn into_writes(self) -> WriteSet {
        self.into_parts().0
    }

    /// The accepted writes and the base values read while producing them.
    pub fn into_parts(self) -> (WriteSet, BaseReads) {
        assert!(
            self.tx.is_empty(),
            "write set taken with an open transaction"
        );
        (
            self.block.into_iter().collect(),
            self.base_reads.into_inner(),
        )
    }

    /// Visits keys under `prefix` as this overlay sees them, ascending.
    pub fn scan_prefix(
        &self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        let block: WriteSet = self
            .block
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        scan_layered(self.base, &[&block, &self.tx], prefix, visit)
    }
}

/// Decodes a stored value, reporting the key on failure.
pub fn decode<T: BorshDeserialize>(key: &[u8], bytes: &[u8]) -> Result<T, StateError> {
    borsh::from_slice(bytes)
        .map_err(|e| StateError(format!("corrupt value under key {}: {e}", hex::encode(key))))
}

/// Decodes every record under `prefix`, in key order, and returns the first violation `check`
/// reports, or the first read or decode failure: the shape of a module's `check_invariants`
/// over its records. Stops scanning at the first failure.
pub fn check_records<T: BorshDeserialize>(
    state: &dyn StateReader,
    prefix: &[u8],
    mut check: impl FnMut(&T) -> Option<String>,
) -> Result<(), String> {
    let mut failure = None;
    state
        .scan_prefix(prefix, &mut |key, value| {
            failure = match decode::<T>(key, value) {
                Ok(record) => check(&record),
                Err(e) => Some(e.to_string()),
            };
            failure.is_none()
        })
        .map_err(|e| e.to_string())?;
    failure.map_or(Ok(()), Err)
}

impl StateReader for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Overlay::get(self, key)
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        Overlay::scan_prefix(self, prefix, visit)
    }
}

/// Reads and decodes a borsh value from any state.
pub fn read_borsh<T: BorshDeserialize>(
    state: &dyn StateReader,
    key: &[u8],
) -> Result<Option<T>, StateError> {
    match state.get(key)? {
        None => Ok(None),
        Some(bytes) => decode(key, &bytes).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discarded_transaction_leaves_nothing() {
        let mut base = MemState::default();
        base.0.insert(b"a".to_vec(), b"1".to_vec());
        let mut overlay = Overlay::new(&base);
        overlay.put(b"a".to_vec(), b"2".to_vec());
        overlay.put(b"b".to_vec(), b"3".to_vec());
        assert_eq!(overlay.get(b"a").unwrap(), Some(b"2".to_vec()));
        overlay.discard_tx();
        assert_eq!(overlay.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert!(overlay.into_writes().is_empty());
    }

    #[test]
    fn committed_transactions_layer_and_scan_merges() {
        let mut base = MemState::default();
        base.0.insert(b"p/1".to_vec(), b"x".to_vec());
        base.0.insert(b"p/2".to_vec(), b"y".to_vec());
        base.0.insert(b"q/1".to_vec(), b"z".to_vec());
        let mut overlay = Overlay::new(&base);
        overlay.delete(b"p/1".to_vec());
        overlay.put(b"p/3".to_vec(), b"w".to_vec());
        overlay.commit_tx();
        let mut seen = Vec::new();
        overlay
            .scan_prefix(b"p/", &mut |k, v| {
                seen.push((k.to_vec(), v.to_vec()));
                true
            })
            .unwrap();
        assert_eq!(
            seen,
            vec![
                (b"p/2".to_vec(), b"y".to_vec()),
                (b"p/3".to_vec(), b"w".to_vec())
            ]
        );
        let writes = overlay.into_writes();
        assert_eq!(writes.get(b"p/1".as_slice()), Some(&None));
    }

    #[test]
    fn scan_merges_layers_in_order_and_stops_early() {
        let mut base = MemState::default();
        for key in ["p/1", "p/3", "p/5", "p/7"] {
            base.0.insert(key.as_bytes().to_vec(), b"base".to_vec());
        }
        let mut overlay = Overlay::new(&base);
        overlay.put(b"p/0".to_vec(), b"new".to_vec());
        overlay.delete(b"p/3".to_vec());
        overlay.put(b"p/5".to_vec(), b"block".to_vec());
        overlay.commit_tx();
        overlay.put(b"p/5".to_vec(), b"tx".to_vec());
        overlay.put(b"p/9".to_vec(), b"tail".to_vec());
        let mut seen = Vec::new();
        overlay
            .scan_prefix(b"p/", &mut |k, v| {
                seen.push(format!(
                    "{}={}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                ));
                true
            })
            .unwrap();
        assert_eq!(
            seen,
            ["p/0=new", "p/1=base", "p/5=tx", "p/7=base", "p/9=tail"]
        );
        let mut first_two = Vec::new();
        overlay
            .scan_prefix(b"p/", &mut |k, _| {
                first_two.push(k.to_vec());
                first_two.len() < 2
            })
            .unwrap();
        assert_eq!(first_two, [b"p/0".to_vec(), b"p/1".to_vec()]);
        overlay.discard_tx();
    }
}
