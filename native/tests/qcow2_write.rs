//! Write-path cases the model test reaches only by chance: refcount table
//! growth, sessions that only write zeroes, chains dropped without close,
//! and QEMU images with every refcount width.

mod qcow2_support;

use std::os::unix::fs::FileExt;
use std::path::Path;

use layerdisk_native::qcow2::{Chain, CreateOptions, Format, OpenOptions, Qcow2Image};
use qcow2_support::*;

const REFCOUNT_TABLE_OFFSET: u64 = 48;
const REFCOUNT_TABLE_CLUSTERS: u64 = 56;

fn header_u64(path: &Path, offset: u64) -> u64 {
    let mut bytes = [0u8; 8];
    std::fs::File::open(path).unwrap().read_exact_at(&mut bytes, offset).unwrap();
    u64::from_be_bytes(bytes)
}

fn header_u32(path: &Path, offset: u64) -> u32 {
    let mut bytes = [0u8; 4];
    std::fs::File::open(path).unwrap().read_exact_at(&mut bytes, offset).unwrap();
    u32::from_be_bytes(bytes)
}

fn writable() -> OpenOptions {
    OpenOptions { writable: true, ..OpenOptions::default() }
}

#[test]
fn refcount_table_grows_and_stays_consistent() {
    let dir = TempDir::new("grow");
    let path = dir.join("a.qcow2");
    // 512-byte clusters: one refcount table cluster covers 64 blocks of 256
    // clusters each, 8 MiB of file, so 20 MiB of data forces growth.
    Qcow2Image::create(&path, &CreateOptions { virtual_size: Some(32 << 20), cluster_size: 512, backing: None })
        .unwrap();
    let before = (header_u64(&path, REFCOUNT_TABLE_OFFSET), header_u32(&path, REFCOUNT_TABLE_CLUSTERS));

    let mut chain = Chain::open(&path, &writable()).unwrap();
    let mut rng = Rng::new(5);
    let mut data = vec![0u8; 1 << 20];
    for megabyte in 0..20u64 {
        rng.fill(&mut data);
        chain.write(megabyte << 20, &data).unwrap();
    }
    chain.close().unwrap();

    let after = (header_u64(&path, REFCOUNT_TABLE_OFFSET), header_u32(&path, REFCOUNT_TABLE_CLUSTERS));
    assert_ne!(before.0, after.0, "the refcount table moved");
    assert!(after.1 > before.1, "the refcount table grew from {} to {} clusters", before.1, after.1);
    assert_check_clean(&path);

    let mut reread = vec![0u8; 1 << 20];
    Chain::open(&path, &OpenOptions::default()).unwrap().read(19 << 20, &mut reread).unwrap();
    assert!(reread == data, "last megabyte reads back");
}

#[test]
fn zero_only_session_is_persisted() {
    let dir = TempDir::new("zero-only");
    let base = dir.join("base.qcow2");
    let top = dir.join("top.qcow2");
    Qcow2Image::create(&base, &CreateOptions { virtual_size: Some(1 << 20), ..CreateOptions::default() }).unwrap();
    let mut chain = Chain::open(&base, &writable()).unwrap();
    chain.write(0, &vec![0xee; 1 << 20]).unwrap();
    chain.close().unwrap();
    Qcow2Image::create(&top, &CreateOptions { backing: Some((base, Format::Qcow2)), ..CreateOptions::default() })
        .unwrap();

    let mut chain = Chain::open(&top, &writable()).unwrap();
    chain.write_zeroes(0, 1 << 20).unwrap();
    chain.close().unwrap();

    let mut buffer = vec![0xffu8; 1 << 20];
    Chain::open(&top, &OpenOptions::default()).unwrap().read(0, &mut buffer).unwrap();
    assert!(buffer.iter().all(|&byte| byte == 0), "zero clusters mask the base");
    assert_check_clean(&top);
}

#[test]
fn dropped_chain_keeps_completed_writes() {
    let dir = TempDir::new("drop");
    let path = dir.join("a.qcow2");
    Qcow2Image::create(&path, &CreateOptions { virtual_size: Some(4 << 20), cluster_size: 4096, backing: None })
        .unwrap();
    let mut chain = Chain::open(&path, &writable()).unwrap();
    chain.write(12345, &[0x42; 10_000]).unwrap();
    drop(chain);

    assert_check_clean(&path);
    let mut buffer = vec![0u8; 10_000];
    Chain::open(&path, &OpenOptions::default()).unwrap().read(12345, &mut buffer).unwrap();
    assert!(buffer.iter().all(|&byte| byte == 0x42));
}

#[test]
fn writes_into_qemu_images_of_every_refcount_width() {
    for refcount_bits in [1, 2, 4, 8, 16, 32, 64] {
        let dir = TempDir::new("refcount-bits");
        let path = dir.join("a.qcow2");
        let option = format!("refcount_bits={refcount_bits},cluster_size=512");
        run_ok("qemu-img", &["create", "-q", "-f", "qcow2", "-o", &option, path_str(&path), "16M"]);

        let mut chain = Chain::open(&path, &writable()).unwrap();
        let mut rng = Rng::new(refcount_bits);
        let mut data = vec![0u8; 100_000];
        for _ in 0..40 {
            rng.fill(&mut data);
            chain.write(rng.below(15 << 20), &data).unwrap();
        }
        chain.write_zeroes(1 << 20, 64 << 10).unwrap();
        chain.close().unwrap();
        assert_check_clean(&path);

        let info = run_ok("qemu-img", &["info", "--output=json", "-f", "qcow2", path_str(&path)]);
        assert!(info.contains(&format!("\"refcount-bits\": {refcount_bits}")), "{info}");
    }
}

#[test]
fn v2_images_open_read_only_but_reject_writes() {
    let dir = TempDir::new("v2-write");
    let path = dir.join("a.qcow2");
    run_ok("qemu-img", &["create", "-q", "-f", "qcow2", "-o", "compat=0.10", path_str(&path), "1M"]);
    assert!(Chain::open(&path, &OpenOptions::default()).is_ok());
    let error = Chain::open(&path, &writable()).err().expect("writable open of a v2 image fails");
    assert_eq!((error.code(), error.offset()), ("ERR_QCOW2_UNSUPPORTED", Some(4)));
}

#[test]
fn writer_excludes_other_handles() {
    let dir = TempDir::new("lock");
    let base = dir.join("base.qcow2");
    let top = dir.join("top.qcow2");
    Qcow2Image::create(&base, &CreateOptions { virtual_size: Some(1 << 20), ..CreateOptions::default() }).unwrap();
    Qcow2Image::create(
        &top,
        &CreateOptions { backing: Some((base.clone(), Format::Qcow2)), ..CreateOptions::default() },
    )
    .unwrap();

    let writer = Chain::open(&top, &writable()).unwrap();
    let code = |result: Result<Chain, layerdisk_native::qcow2::Qcow2Error>| result.err().map(|error| error.code());
    assert_eq!(code(Chain::open(&top, &writable())), Some("ERR_QCOW2_LOCKED"));
    assert_eq!(code(Chain::open(&top, &OpenOptions::default())), Some("ERR_QCOW2_LOCKED"));
    let options = CreateOptions { virtual_size: Some(1 << 20), ..CreateOptions::default() };
    assert_eq!(Qcow2Image::create(&top, &options).unwrap_err().code(), "ERR_QCOW2_LOCKED");

    // The base is only read, so other readers may share it, but no writer.
    let reader = Chain::open(&base, &OpenOptions::default()).unwrap();
    assert_eq!(code(Chain::open(&base, &writable())), Some("ERR_QCOW2_LOCKED"));
    drop(reader);
    writer.close().unwrap();
    assert!(Chain::open(&top, &writable()).is_ok());
}

#[test]
fn partial_last_cluster_reads_and_writes() {
    let dir = TempDir::new("tail");
    let base = dir.join("base.qcow2");
    let top = dir.join("top.qcow2");
    let size = (3 << 20) + 1536;
    Qcow2Image::create(&base, &CreateOptions { virtual_size: Some(size - 1024), ..CreateOptions::default() }).unwrap();
    let mut chain = Chain::open(&base, &writable()).unwrap();
    chain.write(size - 1024 - 700, &[0x11; 700]).unwrap();
    chain.close().unwrap();

    let options =
        CreateOptions { virtual_size: Some(size), backing: Some((base, Format::Qcow2)), ..Default::default() };
    Qcow2Image::create(&top, &options).unwrap();
    let mut chain = Chain::open(&top, &writable()).unwrap();
    chain.write(size - 1000, &[0x22; 500]).unwrap();
    chain.write_zeroes(size - 400, 400).unwrap();
    assert_eq!(chain.write(size - 10, &[0; 11]).unwrap_err().code(), "ERR_QCOW2_INVALID_ARGUMENT");
    chain.close().unwrap();

    let mut expected = vec![0u8; size as usize];
    expected[(size - 1024 - 700) as usize..(size - 1024) as usize].fill(0x11);
    expected[(size - 1000) as usize..(size - 500) as usize].fill(0x22);
    let mut actual = vec![0xffu8; size as usize];
    Chain::open(&top, &OpenOptions::default()).unwrap().read(0, &mut actual).unwrap();
    assert!(actual == expected, "the last, partial cluster reads back");

    assert_check_clean(&top);
    let model = dir.join("model.raw");
    std::fs::write(&model, &expected).unwrap();
    assert_compare_identical(&top, "qcow2", &model, "raw");
}

#[test]
fn discard_keeps_last_flushed_state() {
    let dir = TempDir::new("discard");
    let path = dir.join("a.qcow2");
    Qcow2Image::create(&path, &CreateOptions { virtual_size: Some(4 << 20), cluster_size: 4096, backing: None }).unwrap();
    let mut chain = Chain::open(&path, &writable()).unwrap();
    chain.write(0, &[1; 8192]).unwrap();
    chain.flush().unwrap();
    chain.write(1 << 20, &[2; 8192]).unwrap();
    chain.discard();

    assert_check_clean(&path);
    let mut chain = Chain::open(&path, &OpenOptions::default()).unwrap();
    let mut buffer = vec![0u8; 8192];
    chain.read(0, &mut buffer).unwrap();
    assert!(buffer.iter().all(|&byte| byte == 1), "flushed data stays");
    chain.read(1 << 20, &mut buffer).unwrap();
    assert!(buffer.iter().all(|&byte| byte == 0), "unflushed data is dropped");
}
