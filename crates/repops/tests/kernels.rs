//! Kernels: gradients against finite differences (with tolerances), and reproducibility
//! across thread pools and SIMD paths (bit for bit).

use poi_repops::gemm::{Dims, SimdPath, force_path};
use poi_repops::kernels::*;
use poi_repops::optim::{AdamW, Sgd};
use poi_repops::rng::CounterRng;

fn randn(seed: u64, len: usize, scale: f32) -> Vec<f32> {
    let mut rng = CounterRng::new(seed, 7);
    (0..len).map(|_| rng.normal_f32() * scale).collect()
}

/// `sum_i w_i y_i` in f64: the scalar whose gradient `dy = w` is checked.
fn dot(w: &[f32], y: &[f32]) -> f64 {
    w.iter()
        .zip(y)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}

/// Central differences of `loss` at up to 24 coordinates of `x` against `analytic`.
fn grad_check(name: &str, x: &[f32], analytic: &[f32], loss: impl Fn(&[f32]) -> f64) {
    assert_eq!(x.len(), analytic.len(), "{name}");
    let h = 1e-2f32;
    let step = (x.len() / 24).max(1);
    for i in (0..x.len()).step_by(step) {
        let mut xp = x.to_vec();
        xp[i] = x[i] + h;
        let lp = loss(&xp);
        xp[i] = x[i] - h;
        let lm = loss(&xp);
        let numeric = (lp - lm) / (2.0 * f64::from(h));
        let a = f64::from(analytic[i]);
        let tol = 1e-2 * (1.0 + a.abs().max(numeric.abs()));
        assert!(
            (numeric - a).abs() <= tol,
            "{name}[{i}]: numeric {numeric} analytic {a}"
        );
    }
}

#[test]
fn elementwise_gradients_match_finite_differences() {
    let x: Vec<f32> = randn(1, 64, 1.0)
        .iter()
        .map(|v| if v.abs() < 0.05 { 0.3 } else { *v })
        .collect();
    let w = randn(2, 64, 1.0);
    let mut dx = vec![0.0; 64];
    let fwd = |f: fn(&mut [f32], &[f32]) -> poi_repops::tensor::OpResult<()>, x: &[f32]| {
        let mut y = vec![0.0; x.len()];
        f(&mut y, x).unwrap();
        dot(&w, &y)
    };
    relu_backward(&mut dx, &w, &x).unwrap();
    grad_check("relu", &x, &dx, |x| fwd(relu_forward, x));
    gelu_backward(&mut dx, &w, &x).unwrap();
    grad_check("gelu", &x, &dx, |x| fwd(gelu_forward, x));
}

#[test]
fn softmax_family_gradients_match_finite_differences() {
    let (rows, cols) = (3, 11);
    let x = randn(3, rows * cols, 2.0);
    let w = randn(4, rows * cols, 1.0);
    let mut y = vec![0.0; rows * cols];
    let mut dx = vec![0.0; rows * cols];
    softmax_forward(&mut y, &x, rows, cols).unwrap();
    softmax_backward(&mut dx, &w, &y, rows, cols).unwrap();
    grad_check("softmax", &x, &dx, |x| {
        let mut y = vec![0.0; x.len()];
        softmax_forward(&mut y, x, rows, cols).unwrap();
        dot(&w, &y)
    });
    log_softmax_forward(&mut y, &x, rows, cols).unwrap();
    log_softmax_backward(&mut dx, &w, &y, rows, cols).unwrap();
    grad_check("log_softmax", &x, &dx, |x| {
        let mut y = vec![0.0; x.len()];
        log_softmax_forward(&mut y, x, rows, cols).unwrap();
        dot(&w, &y)
    });
    let targets = [3u32, 0, 10];
    let loss = cross_entropy(&mut dx, &x, &targets, rows, cols).unwrap();
    assert_eq!(
        loss.to_bits(),
        cross_entropy_loss(&x, &targets, rows, cols)
            .unwrap()
            .to_bits()
    );
    let expected: f32 = (0..rows)
        .map(|r| -y[r * cols + targets[r] as usize])
        .sum::<f32>()
        / 3.0;
    assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    grad_check("cross_entropy", &x, &dx, |x| {
        f64::from(cross_entropy_loss(x, &targets, rows, cols).unwrap())
    });
    let err = cross_entropy(&mut dx, &x, &[3, 11, 0], rows, cols).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cross_entropy: index 11 at position 1 is out of range 0..11"
    );
}

#[test]
fn layer_norm_gradients_match_finite_differences() {
    let (rows, cols) = (4, 24);
    let x = randn(5, rows * cols, 1.5);
    let gamma = randn(6, cols, 1.0);
    let beta = randn(7, cols, 1.0);
    let w = randn(8, rows * cols, 1.0);
    let fwd = |x: &[f32], g: &[f32], b: &[f32]| {
        let (mut y, mut m, mut s) = (vec![0.0; rows * cols], vec![0.0; rows], vec![0.0; rows]);
        layer_norm_forward(&mut y, &mut m, &mut s, x, g, b, (rows, cols), 1e-5).unwrap();
        (y, m, s)
    };
    let (_, mean, rstd) = fwd(&x, &gamma, &beta);
    let (mut dx, mut dg, mut db) = (vec![0.0; rows * cols], vec![0.0; cols], vec![0.0; cols]);
    layer_norm_backward(
        &mut dx,
        &mut dg,
        &mut db,
        &w,
        &x,
        &gamma,
        (&mean, &rstd),
        (rows, cols),
    )
    .unwrap();
    grad_check("layer_norm dx", &x, &dx, |x| {
        dot(&w, &fwd(x, &gamma, &beta).0)
    });
    grad_check("layer_norm dgamma", &gamma, &dg, |g| {
        dot(&w, &fwd(&x, g, &beta).0)
    });
    grad_check("layer_norm dbeta", &beta, &db, |b| {
        dot(&w, &fwd(&x, &gamma, b).0)
    });
    let (mut y, mut m, mut s) = (vec![0.0; rows * cols], vec![0.0; rows], vec![0.0; rows]);
    let bad = layer_norm_forward(&mut y, &mut m, &mut s, &x, &gamma, &beta, (rows, cols), 0.0);
    assert!(bad.is_err());
}

#[test]
fn linear_and_matmul_gradients_match_finite_differences() {
    let dims = Dims::new(5, 7, 3);
    let x = randn(9, 35, 1.0);
    let wt = randn(10, 21, 1.0);
    let b = randn(11, 3, 1.0);
    let w = randn(12, 15, 1.0);
    let fwd = |x: &[f32], wt: &[f32], b: &[f32]| {
        let mut y = vec![0.0; 15];
        linear_forward(&mut y, x, wt, Some(b), dims).unwrap();
        dot(&w, &y)
    };
    let (mut dx, mut dw, mut db) = (vec![0.0; 35], vec![0.0; 21], vec![0.0; 3]);
    linear_backward(Some(&mut dx), &mut dw, Some(&mut db), (&x, &wt, &w), dims).unwrap();
    grad_check("linear dx", &x, &dx, |x| fwd(x, &wt, &b));
    grad_check("linear dw", &wt, &dw, |wt| fwd(&x, wt, &b));
    grad_check("linear db", &b, &db, |b| fwd(&x, &wt, b));
    let (mut da, mut dbm) = (vec![0.0; 35], vec![0.0; 21]);
    matmul_backward(&mut da, &mut dbm, &x, &wt, &w, dims).unwrap();
    assert_eq!(da, dx);
    assert_eq!(dbm, dw);
    // With a bias the chain starts at b[j]: y = fma chain from the bias, not (x w) + b.
    let mut y = vec![0.0; 15];
    linear_forward(&mut y, &x, &wt, Some(&b), dims).unwrap();
    let mut acc = b[1];
    for p in 0..7 {
        acc = x[2 * 7 + p].mul_add(wt[p * 3 + 1], acc);
    }
    assert_eq!(y[2 * 3 + 1].to_bits(), acc.to_bits());
}

fn attention(q: &[f32], k: &[f32], v: &[f32], dims: AttnDims) -> (Vec<f32>, Vec<f32>) {
    let mut out = vec![0.0; q.len()];
    let mut probs = vec![0.0; dims.bh * dims.t * dims.t];
    attention_forward(&mut out, &mut probs, (q, k, v), dims).unwrap();
    (out, probs)
}

#[test]
fn attention_gradients_match_finite_differences_and_mask_the_future() {
    let dims = AttnDims { bh: 2, t: 5, dh: 4 };
    let len = 40;
    let (q, k, v) = (
        randn(13, len, 1.0),
        randn(14, len, 1.0),
        randn(15, len, 1.0),
    );
    let w = randn(16, len, 1.0);
    let (_, probs) = attention(&q, &k, &v, dims);
    for h in 0..2 {
        for i in 0..5 {
            let row = &probs[(h * 5 + i) * 5..(h * 5 + i + 1) * 5];
            assert!(row[i + 1..].iter().all(|&p| p.to_bits() == 0));
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }
    let (mut dq, mut dk, mut dv) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
    attention_backward((&mut dq, &mut dk, &mut dv), &w, (&q, &k, &v), &probs, dims).unwrap();
    grad_check("attention dq", &q, &dq, |q| {
        dot(&w, &attention(q, &k, &v, dims).0)
    });
    grad_check("attention dk", &k, &dk, |k| {
        dot(&w, &attention(&q, k, &v, dims).0)
    });
    grad_check("attention dv", &v, &dv, |v| {
        dot(&w, &attention(&q, &k, v, dims).0)
    });
    // Changing a future position never changes an earlier output.
    let mut v2 = v.clone();
    v2[4 * 4] += 1.0; // head 0, position 4
    let (a, b) = (
        attention(&q, &k, &v, dims).0,
        attention(&q, &k, &v2, dims).0,
    );
    assert_eq!(a[..16], b[..16]);
}

#[test]
fn embedding_and_bias_gradients_are_exact_sums() {
    let (vocab, dim) = (5, 3);
    let table = randn(17, 15, 1.0);
    let ids = [4u32, 1, 4, 0];
    let mut out = vec![0.0; 12];
    embedding_forward(&mut out, &table, &ids, vocab, dim).unwrap();
    assert_eq!(out[..3], table[12..15]);
    let dout = randn(18, 12, 1.0);
    let mut dtable = vec![1.0; 15];
    embedding_backward(&mut dtable, &dout, &ids, vocab, dim).unwrap();
    for j in 0..3 {
        assert_eq!(
            dtable[12 + j].to_bits(),
            (0.0 + dout[j] + dout[6 + j]).to_bits()
        );
        assert_eq!(dtable[9 + j], 0.0);
    }
    assert!(embedding_forward(&mut out, &table, &[5, 0, 0, 0], vocab, dim).is_err());
    let (mut x, bias) = (vec![1.0; 6], [0.5, -1.0, 2.0]);
    bias_add(&mut x, &bias, 2, 3).unwrap();
    assert_eq!(x, [1.5, 0.0, 3.0, 1.5, 0.0, 3.0]);
}

#[test]
fn dropout_masks_depend_only_on_seed_stream_and_index() {
    let n = 40_000;
    let x = vec![1.0f32; n];
    let p = 0.25;
    let mut y = vec![0.0; n];
    dropout_forward(&mut y, &x, p, 42, 3).unwrap();
    let kept = y.iter().filter(|&&v| v != 0.0).count();
    let rate = kept as f64 / n as f64;
    assert!((rate - 0.75).abs() < 0.01, "keep rate {rate}");
    for i in (0..n).step_by(997) {
        let keep = dropout_keep(42, 3, i as u64, p);
        assert_eq!(y[i], if keep { 1.0 / 0.75 } else { 0.0 }, "element {i}");
    }
    // The tail of a tensor does not depend on its length or on the chunking.
    let mut short = vec![0.0; 1001];
    dropout_forward(&mut short, &x[..1001], p, 42, 3).unwrap();
    assert_eq!(short[..], y[..1001]);
    let mut other = vec![0.0; n];
    dropout_forward(&mut other, &x, p, 42, 4).unwrap();
    assert_ne!(other, y);
    let mut dx = vec![0.0; n];
    dropout_backward(&mut dx, &x, p, 42, 3).unwrap();
    assert_eq!(dx, y);
    assert!(dropout_forward(&mut y, &x, 1.0, 42, 3).is_err());
    assert!(dropout_forward(&mut y, &x, f32::NAN, 42, 3).is_err());
}

#[test]
fn optimizers_match_hand_computed_steps() {
    let sgd = Sgd {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 0.01,
    };
    let (mut w, mut vel) = (vec![1.0f32, -2.0], vec![0.5f32, 0.0]);
    sgd.step(&mut w, &mut vel, &[0.2, 0.4]).unwrap();
    let g0 = 0.2f32 + 0.01 * 1.0;
    let v0 = 0.9f32 * 0.5 + g0;
    assert_eq!(vel[0].to_bits(), v0.to_bits());
    assert_eq!(w[0].to_bits(), (1.0f32 - 0.1 * v0).to_bits());
    let adam = AdamW {
        lr: 0.01,
        ..AdamW::default()
    };
    let (mut w, mut m, mut v) = (vec![0.5f32], vec![0.0f32], vec![0.0f32]);
    for t in 1..=2 {
        adam.step(&mut w, (&mut m, &mut v), &[0.3], t).unwrap();
    }
    // By hand, two steps in f64: close, not bit-equal (the f32 order is the definition).
    let (mut wh, mut mh, mut vh) = (0.5f64, 0.0f64, 0.0f64);
    for t in 1..=2 {
        wh -= 0.01 * 0.01 * wh;
        mh = 0.9 * mh + 0.1 * 0.3;
        vh = 0.999 * vh + 0.001 * 0.09;
        let (mhat, vhat) = (mh / (1.0 - 0.9f64.powi(t)), vh / (1.0 - 0.999f64.powi(t)));
        wh -= 0.01 * mhat / (vhat.sqrt() + 1e-8);
    }
    assert!((f64::from(w[0]) - wh).abs() < 1e-6, "{} vs {wh}", w[0]);
    assert!(adam.step(&mut w, (&mut m, &mut v), &[0.3], 0).is_err());
}

/// One digest of every kernel's outputs on inputs large enough to go parallel.
fn workload_digest() -> Vec<u32> {
    let (rows, cols) = (300, 128);
    let x = randn(20, rows * cols, 1.0);
    let mut out = Vec::new();
    let mut y = vec![0.0; rows * cols];
    let mut dx = vec![0.0; rows * cols];
    softmax_forward(&mut y, &x, rows, cols).unwrap();
    softmax_backward(&mut dx, &x, &y, rows, cols).unwrap();
    out.extend(&dx);
    gelu_forward(&mut y, &x).unwrap();
    out.extend(&y);
    let targets: Vec<u32> = (0..rows as u32).map(|r| r % 128).collect();
    out.push(cross_entropy(&mut dx, &x, &targets, rows, cols).unwrap());
    out.extend(&dx);
    let (mut m, mut s) = (vec![0.0; rows], vec![0.0; rows]);
    let g = randn(21, cols, 1.0);
    layer_norm_forward(&mut y, &mut m, &mut s, &x, &g, &g, (rows, cols), 1e-5).unwrap();
    out.extend(&y);
    let (mut dg, mut db) = (vec![0.0; cols], vec![0.0; cols]);
    layer_norm_backward(
        &mut dx,
        &mut dg,
        &mut db,
        &x,
        &x,
        &g,
        (&m, &s),
        (rows, cols),
    )
    .unwrap();
    out.extend(dx.iter().chain(&dg).chain(&db));
    dropout_forward(&mut y, &x, 0.1, 1, 2).unwrap();
    out.extend(&y);
    let dims = AttnDims {
        bh: 4,
        t: 32,
        dh: 16,
    };
    let q = &x[..4 * 32 * 16];
    let (o, probs) = attention(q, &x[100..100 + q.len()], &x[200..200 + q.len()], dims);
    out.extend(&o);
    let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; q.len()], vec![0.0; q.len()]);
    attention_backward((&mut dq, &mut dk, &mut dv), q, (q, q, q), &probs, dims).unwrap();
    out.extend(dq.iter().chain(&dk).chain(&dv));
    let mut lin = vec![0.0; rows * 64];
    linear_forward(
        &mut lin,
        &x,
        &x[..cols * 64],
        Some(&x[..64]),
        Dims::new(rows, cols, 64),
    )
    .unwrap();
    out.extend(&lin);
    out.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn kernels_give_the_same_bits_on_every_thread_count_and_simd_path() {
    let reference = workload_digest();
    for threads in [1, 2, 8] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        assert!(
            pool.install(workload_digest) == reference,
            "{threads} threads"
        );
    }
    // The path is process-wide; other tests running meanwhile are unaffected by design.
    for path in SimdPath::supported() {
        force_path(path).unwrap();
        assert!(workload_digest() == reference, "{path}");
    }
    force_path(SimdPath::best()).unwrap();
}
