//! The char LM's part of [`super::Layout`], written from the call order documented in
//! [`crate::model::charlm`] and its block: embeddings, blocks, head and loss, then the
//! mirror image backward. Returns each parameter's gradient source in digest order.

use super::layout::{BatchPart, Builder, Source, op};
use crate::meter::OpKind;
use crate::model::{CharLmSpec, DataShape, LN_EPS};

/// Batch geometry, as dims.
struct Geo {
    n: u64,
    d: u64,
    dff: u64,
    /// `split_heads` / `merge_heads` dims.
    heads: Vec<u64>,
    /// Attention dims.
    attn: Vec<u64>,
}

/// The forward calls of one block that its backward reads.
struct Fwd {
    x: Source,
    ln1: u32,
    qh: u32,
    kh: u32,
    vh: u32,
    att: u32,
    o: u32,
    x1: u32,
    ln2: u32,
    h: u32,
    gelu: u32,
    out: u32,
}

fn linear(b: &mut Builder<'_>, dims: [u64; 3], x: Source, w: &str) -> u32 {
    let inputs = vec![
        x,
        b.param(&format!("{w}.weight")),
        b.param(&format!("{w}.bias")),
    ];
    b.unary(
        OpKind::LinearForward,
        vec![dims[0], dims[1], dims[2], 1],
        inputs,
    )
}

fn linear_backward(b: &mut Builder<'_>, dims: [u64; 3], x: Source, w: &str, dy: Source) -> u32 {
    let kind = (
        OpKind::LinearBackward,
        vec![dims[0], dims[1], dims[2], 1, 1],
    );
    let inputs = vec![x, b.param(&format!("{w}.weight")), dy];
    b.push(kind, vec![], inputs, (None, 3))
}

fn layer_norm(b: &mut Builder<'_>, g: &Geo, x: Source, ln: &str) -> u32 {
    let kind = (OpKind::LayerNormForward, vec![g.n, g.d]);
    let inputs = vec![
        x,
        b.param(&format!("{ln}.gamma")),
        b.param(&format!("{ln}.beta")),
    ];
    b.push(kind, vec![LN_EPS], inputs, (None, 3))
}

/// Layer norm gradients from `dy`, with `x`, the parameters `ln` and the mean and rstd
/// saved by the forward call `ln.1`.
fn layer_norm_backward(
    b: &mut Builder<'_>,
    g: &Geo,
    dy: Source,
    x: Source,
    ln: (&str, u32),
) -> u32 {
    let kind = (OpKind::LayerNormBackward, vec![g.n, g.d]);
    let gamma = b.param(&format!("{}.gamma", ln.0));
    let inputs = vec![dy, x, gamma, op(ln.1, 1), op(ln.1, 2)];
    b.push(kind, vec![], inputs, (None, 3))
}

fn block_forward(b: &mut Builder<'_>, g: &Geo, l: u32, x: Source) -> Fwd {
    let p = |name: &str| format!("h{l}.{name}");
    let (n, d, dff) = (g.n, g.d, g.dff);
    let ln1 = layer_norm(b, g, x.clone(), &p("ln1"));
    let [q, k, v] =
        ["q", "k", "v"].map(|w| linear(b, [n, d, d], op(ln1, 0), &p(&format!("attn.{w}"))));
    let [qh, kh, vh] =
        [q, k, v].map(|i| b.unary(OpKind::SplitHeads, g.heads.clone(), vec![op(i, 0)]));
    let kind = (OpKind::AttentionForward, g.attn.clone());
    let att = b.push(
        kind,
        vec![],
        vec![op(qh, 0), op(kh, 0), op(vh, 0)],
        (None, 2),
    );
    let o = b.unary(OpKind::MergeHeads, g.heads.clone(), vec![op(att, 0)]);
    let proj = linear(b, [n, d, d], op(o, 0), &p("attn.o"));
    let x1 = b.unary(OpKind::AddInto, vec![n * d], vec![x.clone(), op(proj, 0)]);
    let ln2 = layer_norm(b, g, op(x1, 0), &p("ln2"));
    let h = linear(b, [n, d, dff], op(ln2, 0), &p("mlp.fc"));
    let gelu = b.unary(OpKind::GeluForward, vec![n * dff], vec![op(h, 0)]);
    let f = linear(b, [n, dff, d], op(gelu, 0), &p("mlp.proj"));
    let out = b.unary(OpKind::AddInto, vec![n * d], vec![op(x1, 0), op(f, 0)]);
    Fwd {
        x,
        ln1,
        qh,
        kh,
        vh,
        att,
        o,
        x1,
        ln2,
        h,
        gelu,
        out,
    }
}

/// The block's backward from `dout`; returns the gradient of its input and its 16
/// parameter gradients in digest order.
fn block_backward(
    b: &mut Builder<'_>,
    g: &Geo,
    l: u32,
    f: &Fwd,
    dout: Source,
) -> (Source, Vec<Source>) {
    let p = |name: &str| format!("h{l}.{name}");
    let (n, d, dff) = (g.n, g.d, g.dff);
    let pj = linear_backward(b, [n, dff, d], op(f.gelu, 0), &p("mlp.proj"), dout.clone());
    let gb = b.unary(
        OpKind::GeluBackward,
        vec![n * dff],
        vec![op(pj, 0), op(f.h, 0)],
    );
    let fc = linear_backward(b, [n, d, dff], op(f.ln2, 0), &p("mlp.fc"), op(gb, 0));
    let l2 = layer_norm_backward(b, g, op(fc, 0), op(f.x1, 0), (&p("ln2"), f.ln2));
    let dx1 = b.unary(OpKind::AddInto, vec![n * d], vec![dout, op(l2, 0)]);
    let ob = linear_backward(b, [n, d, d], op(f.o, 0), &p("attn.o"), op(dx1, 0));
    let doh = b.unary(OpKind::SplitHeads, g.heads.clone(), vec![op(ob, 0)]);
    let inputs = vec![
        op(doh, 0),
        op(f.qh, 0),
        op(f.kh, 0),
        op(f.vh, 0),
        op(f.att, 1),
    ];
    let ab = b.push(
        (OpKind::AttentionBackward, g.attn.clone()),
        vec![],
        inputs,
        (None, 3),
    );
    let [dq, dk, dv] =
        [0, 1, 2].map(|s| b.unary(OpKind::MergeHeads, g.heads.clone(), vec![op(ab, s)]));
    let a = || op(f.ln1, 0);
    let qb = linear_backward(b, [n, d, d], a(), &p("attn.q"), op(dq, 0));
    let kb = linear_backward(b, [n, d, d], a(), &p("attn.k"), op(dk, 0));
    let s1 = b.unary(OpKind::AddAssign, vec![n * d], vec![op(qb, 0), op(kb, 0)]);
    let vb = linear_backward(b, [n, d, d], a(), &p("attn.v"), op(dv, 0));
    let s2 = b.unary(OpKind::AddAssign, vec![n * d], vec![op(s1, 0), op(vb, 0)]);
    let l1 = layer_norm_backward(b, g, op(s2, 0), f.x.clone(), (&p("ln1"), f.ln1));
    let dx = b.unary(OpKind::AddInto, vec![n * d], vec![op(dx1, 0), op(l1, 0)]);
    let grads = [l1, qb, kb, vb, ob, l2, fc, pj]
        .into_iter()
        .flat_map(|i| [op(i, 1), op(i, 2)])
        .collect();
    (op(dx, 0), grads)
}

/// The char LM's calls for `batch` windows; returns each parameter's gradient source.
pub(super) fn charlm(
    b: &mut Builder<'_>,
    c: &CharLmSpec,
    shape: DataShape,
    batch_rows: u32,
) -> Vec<Source> {
    let (v, t, d) = (
        shape.inputs as u64,
        u64::from(c.context),
        u64::from(c.d_model),
    );
    let (rows, heads) = (u64::from(batch_rows), u64::from(c.heads));
    let n = rows * t;
    let g = Geo {
        n,
        d,
        dff: u64::from(c.d_ff),
        heads: vec![rows, t, heads, d / heads],
        attn: vec![rows * heads, t, d / heads],
    };
    let embed = |b: &mut Builder<'_>, table: &str, vocab: u64, ids: BatchPart| {
        let inputs = vec![b.param(table)];
        b.push(
            (OpKind::EmbeddingForward, vec![n, vocab, d]),
            vec![],
            inputs,
            (Some(ids), 1),
        )
    };
    let tok = embed(b, "tok_emb", v, BatchPart::Tokens);
    let pos = embed(b, "pos_emb", t, BatchPart::Positions);
    let x0 = b.unary(OpKind::AddInto, vec![n * d], vec![op(tok, 0), op(pos, 0)]);
    let (mut x, mut blocks) = (op(x0, 0), Vec::new());
    for l in 0..c.layers {
        let f = block_forward(b, &g, l, x);
        x = op(f.out, 0);
        blocks.push(f);
    }
    let lnf = layer_norm(b, &g, x.clone(), "ln_f");
    let head = linear(b, [n, d, v], op(lnf, 0), "head");
    let kind = (OpKind::CrossEntropy, vec![n, v]);
    let ce = b.push(
        kind,
        vec![],
        vec![op(head, 0)],
        (Some(BatchPart::Targets), 2),
    );
    let hb = linear_backward(b, [n, d, v], op(lnf, 0), "head", op(ce, 0));
    let lnfb = layer_norm_backward(b, &g, op(hb, 0), x, ("ln_f", lnf));
    let (mut cur, mut block_grads) = (op(lnfb, 0), vec![Vec::new(); blocks.len()]);
    for (l, f) in blocks.iter().enumerate().rev() {
        (cur, block_grads[l]) = block_backward(b, &g, l as u32, f, cur);
    }
    let unembed = |b: &mut Builder<'_>, vocab: u64, ids: BatchPart, dy: Source| {
        let kind = (OpKind::EmbeddingBackward, vec![n, vocab, d]);
        b.push(kind, vec![], vec![dy], (Some(ids), 1))
    };
    let et = unembed(b, v, BatchPart::Tokens, cur.clone());
    let ep = unembed(b, t, BatchPart::Positions, cur);
    let mut grads = vec![op(et, 0), op(ep, 0)];
    grads.extend(block_grads.into_iter().flatten());
    grads.extend([op(lnfb, 1), op(lnfb, 2), op(hb, 1), op(hb, 2)]);
    grads
}
