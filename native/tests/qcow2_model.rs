//! Randomized model test: random writes and zero writes through chains of 1
//! to 12 layers, compared byte for byte with an in-memory raw model, and
//! checked with `qemu-img check` and `qemu-img compare` after each layer.
//!
//! The seed is printed; set QCOW2_MODEL_SEED to replay a failure.

mod qcow2_support;

use std::path::Path;

use layerdisk_native::qcow2::{Chain, CreateOptions, Format, OpenOptions};
use qcow2_support::*;

struct Config {
    virtual_size: u64,
    cluster_size: u64,
    layers: usize,
    operations_per_layer: usize,
    raw_base: bool,
}

fn seed() -> u64 {
    match std::env::var("QCOW2_MODEL_SEED") {
        Ok(text) => text.parse().expect("QCOW2_MODEL_SEED must be an unsigned integer"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    }
}

/// Picks an offset and length: often cluster-aligned, often unaligned,
/// sometimes spanning several clusters.
fn random_range(rng: &mut Rng, config: &Config) -> (u64, u64) {
    let cluster = config.cluster_size;
    let size = config.virtual_size;
    let (offset, length) = match rng.below(4) {
        0 => {
            let clusters = size / cluster;
            (rng.below(clusters) * cluster, (1 + rng.below(4)) * cluster)
        }
        1 => (rng.below(size), 1 + rng.below(cluster * 3)),
        2 => (rng.below(size), 1 + rng.below(64)),
        _ => (rng.below(size / 512) * 512, 512 * (1 + rng.below(2 * cluster / 512 + 1))),
    };
    (offset, length.min(size - offset).max(1).min(size - offset))
}

fn write_model(path: &Path, model: &[u8]) {
    std::fs::write(path, model).expect("write raw model");
}

fn verify_through_reader(chain: &mut Chain, model: &[u8], rng: &mut Rng, context: &str) {
    let mut whole = vec![0u8; model.len()];
    chain.read(0, &mut whole).unwrap();
    if whole != model {
        let first = whole.iter().zip(model).position(|(a, b)| a != b).unwrap();
        panic!("{context}: byte {first} reads {} but the model has {}", whole[first], model[first]);
    }
    for _ in 0..32 {
        let offset = rng.below(model.len() as u64);
        let length = 1 + rng.below((model.len() as u64 - offset).min(100_000));
        let mut piece = vec![0u8; length as usize];
        chain.read(offset, &mut piece).unwrap();
        assert!(piece == model[offset as usize..(offset + length) as usize], "{context}: read {offset}+{length}");
    }
}

/// Runs one model configuration. `seed` is the logged seed; `salt` keeps
/// the tests that share it from drawing the same numbers.
fn run_model(seed: u64, salt: u64, config: &Config) {
    eprintln!(
        "qcow2 model: seed {seed} ({} layers, {} KiB virtual, {} B clusters, raw base {}); replay with QCOW2_MODEL_SEED={seed}",
        config.layers,
        config.virtual_size / 1024,
        config.cluster_size,
        config.raw_base
    );
    let mut rng = Rng::new(seed ^ salt);
    let dir = TempDir::new("model");
    let model_path = dir.join("model.raw");
    let mut model = vec![0u8; config.virtual_size as usize];

    let mut below: Option<(std::path::PathBuf, Format)> = None;
    if config.raw_base {
        // A raw bottom layer with some data, shorter than the disk so the
        // tail reads as zeros.
        let base = dir.join("base.raw");
        let base_size = config.virtual_size / 2 + 512;
        let mut contents = vec![0u8; base_size as usize];
        rng.fill(&mut contents[..(base_size / 3) as usize]);
        std::fs::write(&base, &contents).unwrap();
        model[..base_size as usize].copy_from_slice(&contents);
        below = Some((base, Format::Raw));
    }

    for layer in 0..config.layers {
        let path = dir.join(&format!("layer{layer}.qcow2"));
        let options = CreateOptions {
            virtual_size: Some(config.virtual_size),
            cluster_size: config.cluster_size,
            backing: below.clone(),
        };
        layerdisk_native::qcow2::Qcow2Image::create(&path, &options).unwrap();
        let mut chain = Chain::open(&path, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();

        for operation in 0..config.operations_per_layer {
            let (offset, length) = random_range(&mut rng, config);
            let range = offset as usize..(offset + length) as usize;
            if rng.below(4) == 0 {
                chain
                    .write_zeroes(offset, length)
                    .unwrap_or_else(|e| panic!("seed {seed} layer {layer} op {operation}: {e}"));
                model[range].fill(0);
            } else {
                let mut data = vec![0u8; length as usize];
                rng.fill(&mut data);
                chain.write(offset, &data).unwrap_or_else(|e| panic!("seed {seed} layer {layer} op {operation}: {e}"));
                model[range].copy_from_slice(&data);
            }
            match rng.below(100) {
                0 | 1 => chain.flush().unwrap(),
                // Reopening continues from what is on disk, which checks that a
                // writable open of our own image allocates after its end.
                2 => {
                    chain.close().unwrap();
                    chain = Chain::open(&path, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
                }
                _ => {}
            }
        }

        let context = format!("seed {seed} layer {layer}");
        verify_through_reader(&mut chain, &model, &mut rng, &context);
        chain.close().unwrap();

        let mut reopened = Chain::open(&path, &OpenOptions::default()).unwrap();
        verify_through_reader(&mut reopened, &model, &mut rng, &format!("{context} after reopen"));
        assert_check_clean(&path);
        write_model(&model_path, &model);
        assert_compare_identical(&path, "qcow2", &model_path, "raw");
        below = Some((path, Format::Qcow2));
    }
}

#[test]
fn model_small_clusters_deep_chain() {
    let seed = seed();
    let mut rng = Rng::new(seed ^ 1);
    let layers = 1 + rng.below(12) as usize;
    let config = Config {
        virtual_size: 8 << 20,
        cluster_size: 512,
        layers,
        operations_per_layer: 300,
        raw_base: rng.below(2) == 0,
    };
    run_model(seed, 0x10, &config);
}

#[test]
fn model_twelve_layers_4k_clusters() {
    let seed = seed();
    let config =
        Config { virtual_size: 16 << 20, cluster_size: 4096, layers: 12, operations_per_layer: 250, raw_base: false };
    run_model(seed, 0x20, &config);
}

#[test]
fn model_default_clusters_64m() {
    let seed = seed();
    let mut rng = Rng::new(seed ^ 3);
    let config = Config {
        virtual_size: 64 << 20,
        cluster_size: 65536,
        layers: 1 + rng.below(4) as usize,
        operations_per_layer: 300,
        raw_base: rng.below(2) == 0,
    };
    run_model(seed, 0x30, &config);
}
