//! Prints a blake3 digest of a fixed GEMM and kernel workload: one training step of a small
//! MLP and of a causal attention block, plus GEMMs in every transpose mode.
//!
//! The digest must be the same for every build (opt level, `target-cpu`), SIMD path and
//! thread count; `tests/cross_build.sh` builds this example several ways and compares.
//! Output: one `path <name> <hex>` line per supported SIMD path, then `digest <hex>`.

use poi_repops::gemm::{Accumulate, Dims, SimdPath, Trans, force_path, gemm};
use poi_repops::kernels::*;
use poi_repops::optim::AdamW;
use poi_repops::rng::CounterRng;
use poi_repops::tensor::{OpResult, canonical_bits};

fn randn(seed: u64, len: usize, scale: f32) -> Vec<f32> {
    let mut rng = CounterRng::new(seed, 0);
    (0..len).map(|_| rng.normal_f32() * scale).collect()
}

struct Digest(blake3::Hasher);

impl Digest {
    fn add(&mut self, label: &str, values: &[f32]) {
        self.0.update(label.as_bytes());
        for &v in values {
            self.0.update(&canonical_bits(v).to_le_bytes());
        }
    }
}

fn gemms(d: &mut Digest) -> OpResult<()> {
    let dims = Dims::new(67, 300, 45);
    let (a, b) = (randn(1, 67 * 300, 1.0), randn(2, 300 * 45, 1.0));
    for (ta, tb) in [
        (Trans::No, Trans::No),
        (Trans::Yes, Trans::No),
        (Trans::No, Trans::Yes),
    ] {
        let mut c = randn(3, 67 * 45, 1.0);
        gemm(&mut c, &a, ta, &b, tb, dims, Accumulate::Add)?;
        d.add("gemm", &c);
    }
    Ok(())
}

/// One step of a 2-layer GELU MLP with dropout, cross-entropy and AdamW.
fn mlp_step(d: &mut Digest) -> OpResult<()> {
    let (batch, inp, hid, classes) = (96, 13, 64, 7);
    let x = randn(10, batch * inp, 1.0);
    let targets: Vec<u32> = (0..batch as u32)
        .map(|i| (i * 5 + 1) % classes as u32)
        .collect();
    let (mut w1, b1) = (randn(11, inp * hid, 0.3), randn(12, hid, 0.1));
    let (w2, b2) = (randn(13, hid * classes, 0.2), randn(14, classes, 0.1));
    let (mut h, mut a, mut ad) = (
        vec![0.0; batch * hid],
        vec![0.0; batch * hid],
        vec![0.0; batch * hid],
    );
    linear_forward(&mut h, &x, &w1, Some(&b1), Dims::new(batch, inp, hid))?;
    gelu_forward(&mut a, &h)?;
    dropout_forward(&mut ad, &a, 0.1, 99, 1)?;
    let mut logits = vec![0.0; batch * classes];
    linear_forward(
        &mut logits,
        &ad,
        &w2,
        Some(&b2),
        Dims::new(batch, hid, classes),
    )?;
    let mut dlogits = vec![0.0; batch * classes];
    let loss = cross_entropy(&mut dlogits, &logits, &targets, batch, classes)?;
    let (mut dad, mut dw2, mut db2) = (
        vec![0.0; batch * hid],
        vec![0.0; hid * classes],
        vec![0.0; classes],
    );
    let dims2 = Dims::new(batch, hid, classes);
    linear_backward(
        Some(&mut dad),
        &mut dw2,
        Some(&mut db2),
        (&ad, &w2, &dlogits),
        dims2,
    )?;
    let (mut da, mut dh) = (vec![0.0; batch * hid], vec![0.0; batch * hid]);
    dropout_backward(&mut da, &dad, 0.1, 99, 1)?;
    gelu_backward(&mut dh, &da, &h)?;
    let (mut dw1, mut db1) = (vec![0.0; inp * hid], vec![0.0; hid]);
    linear_backward(
        None,
        &mut dw1,
        Some(&mut db1),
        (&x, &w1, &dh),
        Dims::new(batch, inp, hid),
    )?;
    let (mut m, mut v) = (vec![0.0; w1.len()], vec![0.0; w1.len()]);
    AdamW::default().step(&mut w1, (&mut m, &mut v), &dw1, 1)?;
    d.add("mlp", &[loss]);
    for (label, t) in [
        ("logits", &logits),
        ("dw2", &dw2),
        ("db1", &db1),
        ("w1", &w1),
    ] {
        d.add(label, t);
    }
    Ok(())
}

/// Layer norm, causal attention over 2 heads and their gradients.
fn attention_step(d: &mut Digest) -> OpResult<()> {
    let (b, t, heads, dh) = (2, 48, 2, 16);
    let model = heads * dh;
    let x = randn(20, b * t * model, 1.0);
    let (g, beta) = (randn(21, model, 1.0), randn(22, model, 0.1));
    let (mut y, mut mean, mut rstd) = (vec![0.0; x.len()], vec![0.0; b * t], vec![0.0; b * t]);
    layer_norm_forward(
        &mut y,
        &mut mean,
        &mut rstd,
        &x,
        &g,
        &beta,
        (b * t, model),
        1e-5,
    )?;
    let mut q = vec![0.0; x.len()];
    split_heads(&mut q, &y, (b, t, heads, dh))?;
    let dims = AttnDims {
        bh: b * heads,
        t,
        dh,
    };
    let (k, v) = (randn(23, x.len(), 1.0), randn(24, x.len(), 1.0));
    let (mut o, mut probs) = (vec![0.0; x.len()], vec![0.0; b * heads * t * t]);
    attention_forward(&mut o, &mut probs, (&q, &k, &v), dims)?;
    let dout = randn(25, x.len(), 1.0);
    let (mut dq, mut dk, mut dv) = (vec![0.0; x.len()], vec![0.0; x.len()], vec![0.0; x.len()]);
    attention_backward(
        (&mut dq, &mut dk, &mut dv),
        &dout,
        (&q, &k, &v),
        &probs,
        dims,
    )?;
    let mut dy = vec![0.0; x.len()];
    merge_heads(&mut dy, &dq, (b, t, heads, dh))?;
    let (mut dx, mut dg, mut db) = (vec![0.0; x.len()], vec![0.0; model], vec![0.0; model]);
    layer_norm_backward(
        &mut dx,
        &mut dg,
        &mut db,
        &dy,
        &x,
        &g,
        (&mean, &rstd),
        (b * t, model),
    )?;
    for (label, t) in [
        ("o", &o),
        ("dk", &dk),
        ("dv", &dv),
        ("dx", &dx),
        ("dg", &dg),
    ] {
        d.add(label, t);
    }
    Ok(())
}

fn workload() -> OpResult<String> {
    let mut d = Digest(blake3::Hasher::new());
    gemms(&mut d)?;
    mlp_step(&mut d)?;
    attention_step(&mut d)?;
    Ok(d.0.finalize().to_hex().to_string())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut digests = Vec::new();
    for path in SimdPath::supported() {
        force_path(path)?;
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()?;
            let hex = pool.install(workload)?;
            println!("path {path} threads {threads} {hex}");
            digests.push(hex);
        }
    }
    if digests.windows(2).any(|w| w[0] != w[1]) {
        return Err("digests differ between paths or thread counts".into());
    }
    println!("digest {}", digests[0]);
    Ok(())
}
