//! Temporary profiling harness (not kept).
use poi_store::{BlockCommit, Store, StoreOptions};
use std::collections::BTreeMap;
use std::time::Instant;

fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
fn key(i: u64) -> Vec<u8> {
    let mut k = b"bank/balance/".to_vec();
    k.extend_from_slice(&i.to_be_bytes());
    k
}
fn val(s: &mut u64) -> Vec<u8> {
    let mut v = u128::from(next(s)).to_le_bytes().to_vec();
    v.extend_from_slice(&next(s).to_le_bytes());
    v
}
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}
fn wbytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap();
    io.lines()
        .find(|l| l.starts_with("write_bytes"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}
fn main() {
    let blocks: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().unwrap())
        .unwrap_or(60);
    let txs: u64 = std::env::args()
        .nth(2)
        .map(|a| a.parse().unwrap())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir_in("/work").unwrap();
    let store = Store::open_with(
        &dir.path().join("s.redb"),
        StoreOptions {
            history_heights: 16,
            ..Default::default()
        },
    )
    .unwrap();
    let mut s = 7u64;
    let genesis: BTreeMap<_, _> = (0..100_000).map(|i| (key(i), Some(val(&mut s)))).collect();
    store
        .commit(
            store.prepare(0, &genesis).unwrap(),
            BlockCommit {
                height: 0,
                hash: [0; 32],
                bytes: vec![],
                txs: vec![],
            },
        )
        .unwrap();
    let (mut wall_p, mut wall_c) = (0.0, 0.0);
    let (mut cpu0, mut w0, mut t0) = (cpu(), wbytes(), Instant::now());
    for h in 1..=blocks {
        if h == 21 {
            cpu0 = cpu();
            w0 = wbytes();
            t0 = Instant::now();
            wall_p = 0.0;
            wall_c = 0.0;
        }
        let mut writes = BTreeMap::new();
        while writes.len() < 20_000 {
            writes.insert(key(next(&mut s) % 100_000), Some(val(&mut s)));
        }
        let txs: Vec<([u8; 32], Vec<u8>)> = (0..txs)
            .map(|_| {
                let mut hsh = [0u8; 32];
                for c in hsh.chunks_mut(8) {
                    c.copy_from_slice(&next(&mut s).to_le_bytes());
                }
                (hsh, vec![1; 64])
            })
            .collect();
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&h.to_be_bytes());
        let a = Instant::now();
        let p = store.prepare(h, &writes).unwrap();
        let b = Instant::now();
        store
            .commit(
                p,
                BlockCommit {
                    height: h,
                    hash,
                    bytes: vec![0; 2 << 20],
                    txs,
                },
            )
            .unwrap();
        wall_p += (b - a).as_secs_f64();
        wall_c += b.elapsed().as_secs_f64();
    }
    let n = (blocks - 20) as f64;
    println!(
        "per block over {n}: prepare {:.1} ms commit {:.1} ms wall-all {:.1} ms cpu {:.1} ms written {:.1} MB",
        wall_p / n * 1e3,
        wall_c / n * 1e3,
        t0.elapsed().as_secs_f64() / n * 1e3,
        (cpu() - cpu0) / n * 1e3,
        (wbytes() - w0) as f64 / n / 1e6
    );
    println!(
        "file size {:.0} MB",
        std::fs::metadata(dir.path().join("s.redb")).unwrap().len() as f64 / 1e6
    );
}
