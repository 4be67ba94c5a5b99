//! Random corruption of metadata bytes: opening, reading and writing the
//! damaged image must return a result (success or a typed error), never
//! panic. Each case runs on a thread with a deadline, so a hang fails.
//!
//! The seed is printed; set QCOW2_FUZZ_SEED to replay a failure.

mod qcow2_support;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use layerdisk_native::qcow2::{AllowedDir, Chain, CreateOptions, Format, OpenOptions, Qcow2Image};
use qcow2_support::*;

const CASES: u64 = 300;

fn seed() -> u64 {
    match std::env::var("QCOW2_FUZZ_SEED") {
        Ok(text) => text.parse().expect("QCOW2_FUZZ_SEED must be an unsigned integer"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    }
}

/// Builds a small chain with 512-byte clusters, so metadata is spread over
/// the first few KiB of each file. Returns (base, top).
fn build(dir: &TempDir) -> (PathBuf, PathBuf) {
    let base = dir.join("base.qcow2");
    let top = dir.join("top.qcow2");
    Qcow2Image::create(&base, &CreateOptions { virtual_size: Some(1 << 20), cluster_size: 512, backing: None })
        .unwrap();
    let mut chain = Chain::open(&base, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
    chain.write(0, &vec![0x11; 200_000]).unwrap();
    chain.close().unwrap();
    let options =
        CreateOptions { backing: Some((base.clone(), Format::Qcow2)), cluster_size: 512, ..CreateOptions::default() };
    Qcow2Image::create(&top, &options).unwrap();
    let mut chain = Chain::open(&top, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
    chain.write(100_000, &vec![0x22; 50_000]).unwrap();
    chain.write_zeroes(300_000, 4096).unwrap();
    chain.close().unwrap();
    (base, top)
}

/// Opens, reads everything and writes a little; returns the error code, if any.
fn exercise(top: &Path) -> Option<&'static str> {
    let options = OpenOptions { writable: true, allowed_dir: AllowedDir::Anywhere, ..OpenOptions::default() };
    let mut chain = match Chain::open(top, &options) {
        Ok(chain) => chain,
        Err(error) => return Some(error.code()),
    };
    // A corrupt size field may claim terabytes; read the part that was written.
    let mut buffer = vec![0u8; chain.virtual_size().min(4 << 20) as usize];
    if let Err(error) = chain.read(0, &mut buffer) {
        return Some(error.code());
    }
    if let Err(error) = chain.write(1000, &[0x33; 3000]) {
        return Some(error.code());
    }
    chain.close().err().map(|error| error.code())
}

#[test]
fn corrupted_metadata_never_panics_or_hangs() {
    let seed = seed();
    eprintln!("qcow2 corruption fuzz: seed {seed}; replay with QCOW2_FUZZ_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = TempDir::new("fuzz");
    let (base, top) = build(&dir);
    let pristine_base = std::fs::read(&base).unwrap();
    let pristine_top = std::fs::read(&top).unwrap();

    for case in 0..CASES {
        std::fs::write(&base, &pristine_base).unwrap();
        std::fs::write(&top, &pristine_top).unwrap();
        let target = if rng.below(4) == 0 { &base } else { &top };
        let file = std::fs::OpenOptions::new().write(true).open(target).unwrap();
        for _ in 0..1 + rng.below(3) {
            // Metadata of these images lives in the first 8 KiB. Either one
            // byte changes, or a whole 8-byte field gets a random value.
            if rng.below(2) == 0 {
                file.write_all_at(&[rng.next() as u8], rng.below(8192)).unwrap();
            } else {
                let value = rng.next() >> rng.below(64);
                file.write_all_at(&value.to_be_bytes(), rng.below(1024) * 8).unwrap();
            }
        }
        drop(file);

        let (sender, receiver) = mpsc::channel();
        let path = top.clone();
        let worker = std::thread::spawn(move || {
            let outcome = std::panic::catch_unwind(|| exercise(&path));
            let _ = sender.send(outcome.is_ok());
        });
        match receiver.recv_timeout(Duration::from_secs(20)) {
            Ok(true) => {}
            Ok(false) => panic!("seed {seed} case {case}: the engine panicked"),
            Err(_) => panic!("seed {seed} case {case}: the engine did not finish within 20 s"),
        }
        worker.join().unwrap();
    }
}
