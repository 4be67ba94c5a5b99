//! Flatten tests: whole chains and their top layers into qcow2 and sparse
//! raw files, checked with `qemu-img check`, `info` and `compare`.

mod qcow2_support;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use layerdisk_native::qcow2::{
    flatten_to_qcow2, flatten_to_raw, Chain, CreateOptions, FlattenOptions, Format, OpenOptions, Qcow2Image,
};
use qcow2_support::*;

const SIZE: u64 = 32 << 20;

/// Builds a three-layer chain with data, zero writes masking lower data,
/// and large untouched ranges. Returns the paths bottom first.
fn build_chain(dir: &TempDir) -> Vec<PathBuf> {
    let mut rng = Rng::new(7);
    let mut paths: Vec<PathBuf> = Vec::new();
    for index in 0..3 {
        let path = dir.join(&format!("layer{index}.qcow2"));
        let backing = paths.last().map(|below| (below.clone(), Format::Qcow2));
        let options = CreateOptions { virtual_size: Some(SIZE), cluster_size: 4096, backing };
        Qcow2Image::create(&path, &options).unwrap();
        let mut chain = Chain::open(&path, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
        for _ in 0..40 {
            let offset = rng.below(SIZE / 2);
            let mut data = vec![0u8; (1 + rng.below(50_000)) as usize];
            rng.fill(&mut data);
            chain.write(offset, &data).unwrap();
        }
        chain.write_zeroes(rng.below(SIZE / 2 / 4096) * 4096, 64 << 10).unwrap();
        chain.write_zeroes(1000, 5000).unwrap();
        chain.close().unwrap();
        paths.push(path);
    }
    paths
}

#[test]
fn flatten_whole_chain_to_standalone_qcow2() {
    let dir = TempDir::new("flatten-qcow2");
    let paths = build_chain(&dir);
    let top = paths.last().unwrap();
    let output = dir.join("flat.qcow2");

    let mut chain = Chain::open(top, &OpenOptions::default()).unwrap();
    flatten_to_qcow2(&mut chain, &output, &FlattenOptions::default()).unwrap();

    assert_check_clean(&output);
    let info = run_ok("qemu-img", &["info", "--output=json", "-f", "qcow2", path_str(&output)]);
    assert!(!info.contains("backing-filename"), "{info}");
    assert_compare_identical(&output, "qcow2", top, "qcow2");
}

#[test]
fn flatten_top_layers_keeps_the_base() {
    let dir = TempDir::new("flatten-top");
    let paths = build_chain(&dir);
    let top = paths.last().unwrap();
    let output = dir.join("merged.qcow2");

    let mut chain = Chain::open(top, &OpenOptions::default()).unwrap();
    let options = FlattenOptions { layers: Some(2), cluster_size: Some(65536) };
    flatten_to_qcow2(&mut chain, &output, &options).unwrap();

    assert_check_clean(&output);
    let info = run_ok("qemu-img", &["info", "--output=json", "-f", "qcow2", path_str(&output)]);
    assert!(info.contains("\"backing-filename\": \"layer0.qcow2\""), "{info}");
    assert!(info.contains("\"backing-filename-format\": \"qcow2\""), "{info}");
    assert_compare_identical(&output, "qcow2", top, "qcow2");
}

#[test]
fn flatten_to_raw_is_identical_and_sparse() {
    let dir = TempDir::new("flatten-raw");
    let paths = build_chain(&dir);
    let top = paths.last().unwrap();
    let output = dir.join("flat.raw");

    let mut chain = Chain::open(top, &OpenOptions::default()).unwrap();
    flatten_to_raw(&mut chain, &output).unwrap();

    assert_compare_identical(top, "qcow2", &output, "raw");
    let metadata = std::fs::metadata(&output).unwrap();
    assert_eq!(metadata.len(), SIZE);
    // Only the first half of the disk was ever written.
    assert!(metadata.blocks() * 512 < SIZE / 2 + (1 << 20), "raw output uses {} bytes", metadata.blocks() * 512);
}

#[test]
fn flatten_rejects_bad_layer_counts() {
    let dir = TempDir::new("flatten-bad");
    let paths = build_chain(&dir);
    let mut chain = Chain::open(paths.last().unwrap(), &OpenOptions::default()).unwrap();
    for layers in [0, 4] {
        let options = FlattenOptions { layers: Some(layers), cluster_size: None };
        let error = flatten_to_qcow2(&mut chain, &dir.join("x.qcow2"), &options).unwrap_err();
        assert_eq!(error.code(), "ERR_QCOW2_INVALID_ARGUMENT");
    }
}

#[test]
fn flatten_mixed_zero_keeps_base() {
    let dir = TempDir::new("flatten-mixed");
    let base = dir.join("base.qcow2");
    let top = dir.join("top.qcow2");
    Qcow2Image::create(&base, &CreateOptions { virtual_size: Some(1 << 20), cluster_size: 4096, backing: None })
        .unwrap();
    let mut chain = Chain::open(&base, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
    chain.write(0, &vec![0xabu8; 1 << 20]).unwrap();
    chain.close().unwrap();

    let options =
        CreateOptions { backing: Some((base.clone(), Format::Qcow2)), cluster_size: 4096, ..CreateOptions::default() };
    Qcow2Image::create(&top, &options).unwrap();
    let mut chain = Chain::open(&top, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
    // One 4 KiB zero cluster inside what becomes a single 64 KiB cluster.
    chain.write_zeroes(8192, 4096).unwrap();
    chain.close().unwrap();

    let output = dir.join("merged.qcow2");
    let mut chain = Chain::open(&top, &OpenOptions::default()).unwrap();
    flatten_to_qcow2(&mut chain, &output, &FlattenOptions { layers: Some(1), cluster_size: Some(65536) }).unwrap();
    assert_check_clean(&output);
    assert_compare_identical(&output, "qcow2", &top, "qcow2");
}

#[test]
fn import_raw_reads_back_and_stays_sparse() {
    let dir = TempDir::new("import");
    let raw = dir.join("input.raw");
    let mut contents = vec![0u8; 3 << 20];
    Rng::new(9).fill(&mut contents[100_000..1_200_000]);
    contents[2_500_000] = 1;
    std::fs::write(&raw, &contents).unwrap();

    let path = dir.join("imported.qcow2");
    Qcow2Image::create(&path, &CreateOptions { virtual_size: Some(4 << 20), cluster_size: 4096, backing: None })
        .unwrap();
    let mut chain = Chain::open(&path, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
    layerdisk_native::qcow2::import_raw(&mut chain, &raw).unwrap();
    chain.close().unwrap();

    assert_check_clean(&path);
    let expected = dir.join("expected.raw");
    contents.resize(4 << 20, 0);
    std::fs::write(&expected, &contents).unwrap();
    assert_compare_identical(&path, "qcow2", &expected, "raw");
    // About 1.1 MiB of data plus one cluster, not the 3 MiB input.
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < (3 << 19), "image is {size} bytes");
}

#[test]
fn flatten_rejects_a_chain_member_as_output() {
    let dir = TempDir::new("flatten-self");
    let paths = build_chain(&dir);
    let mut chain = Chain::open(paths.last().unwrap(), &OpenOptions::default()).unwrap();
    let error = flatten_to_qcow2(&mut chain, &paths[0], &FlattenOptions::default()).unwrap_err();
    assert_eq!(error.code(), "ERR_QCOW2_INVALID_ARGUMENT");
    let error = flatten_to_raw(&mut chain, &paths[1]).unwrap_err();
    assert_eq!(error.code(), "ERR_QCOW2_INVALID_ARGUMENT");
    assert_check_clean(&paths[0]);
}

#[test]
fn import_raw_failure_returns_instead_of_hanging() {
    let dir = TempDir::new("import-fail");
    let raw = dir.join("input.raw");
    std::fs::write(&raw, vec![0x55u8; 12 << 20]).unwrap();
    let path = dir.join("a.qcow2");
    Qcow2Image::create(&path, &CreateOptions { virtual_size: Some(16 << 20), cluster_size: 65536, backing: None })
        .unwrap();

    // A read-only chain fails on the first write, while the reader thread
    // still has chunks to hand over.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut chain = Chain::open(&path, &OpenOptions::default()).unwrap();
        let _ = sender.send(layerdisk_native::qcow2::import_raw(&mut chain, &raw).map_err(|error| error.code()));
    });
    let result = receiver.recv_timeout(std::time::Duration::from_secs(20)).expect("import_raw returned within 20 s");
    assert_eq!(result, Err("ERR_QCOW2_READ_ONLY"));
}
