//! Owns: embedding lookup and its scatter-add gradient.
//!
//! Order of the gradient: `dtable` starts at `+0.0`, then for positions `p = 0..P` in order,
//! `dtable[ids[p]] += dout[p]` (elementwise). A token that appears several times therefore
//! sums its rows in position order, whatever the thread count (the pass is sequential).

use crate::tensor::{OpError, OpResult, check_len, checked_elems};

fn check_ids(op: &'static str, ids: &[u32], vocab: usize) -> OpResult<()> {
    match ids.iter().position(|&t| t as usize >= vocab) {
        Some(position) => Err(OpError::Index {
            op,
            position,
            index: ids[position] as usize,
            bound: vocab,
        }),
        None => Ok(()),
    }
}

/// `out[p] = table[ids[p]]` for a `vocab x dim` table; `out` is `ids.len() x dim`.
pub fn embedding_forward(
    out: &mut [f32],
    table: &[f32],
    ids: &[u32],
    vocab: usize,
    dim: usize,
) -> OpResult<()> {
    const OP: &str = "embedding_forward";
    check_len(OP, "table", table.len(), checked_elems(OP, &[vocab, dim])?)?;
    check_len(OP, "out", out.len(), checked_elems(OP, &[ids.len(), dim])?)?;
    check_ids(OP, ids, vocab)?;
    if dim == 0 {
        return Ok(());
    }
    for (row, &id) in out.chunks_exact_mut(dim).zip(ids) {
        let id = id as usize;
        row.copy_from_slice(&table[id * dim..(id + 1) * dim]);
    }
    Ok(())
}

/// `dtable = 0`, then `dtable[ids[p]] += dout[p]` for `p` in position order.
pub fn embedding_backward(
    dtable: &mut [f32],
    dout: &[f32],
    ids: &[u32],
    vocab: usize,
    dim: usize,
) -> OpResult<()> {
    const OP: &str = "embedding_backward";
    check_len(
        OP,
        "dtable",
        dtable.len(),
        checked_elems(OP, &[vocab, dim])?,
    )?;
    check_len(
        OP,
        "dout",
        dout.len(),
        checked_elems(OP, &[ids.len(), dim])?,
    )?;
    check_ids(OP, ids, vocab)?;
    dtable.fill(0.0);
    if dim == 0 {
        return Ok(());
    }
    for (row, &id) in dout.chunks_exact(dim).zip(ids) {
        let id = id as usize;
        for (acc, &g) in dtable[id * dim..(id + 1) * dim].iter_mut().zip(row) {
            *acc += g;
        }
    }
    Ok(())
}
