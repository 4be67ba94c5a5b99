//! Negative tests: each corrupts one named field of a valid image and
//! expects one specific error code, file and byte offset.

mod qcow2_support;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use layerdisk_native::qcow2::{AllowedDir, Chain, CreateOptions, Format, OpenOptions, Qcow2Error, Qcow2Image};
use qcow2_support::*;

// Header field offsets from the spec, spelled out so the test does not
// trust the engine's own constants.
const CRYPT_METHOD: u64 = 32;
const L1_TABLE_OFFSET: u64 = 40;
const REFCOUNT_TABLE_OFFSET: u64 = 48;
const INCOMPATIBLE_FEATURES: u64 = 72;
const BACKING_FILE_OFFSET: u64 = 8;

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

fn read_u64(path: &Path, offset: u64) -> u64 {
    let file = std::fs::File::open(path).unwrap();
    let mut bytes = [0u8; 8];
    file.read_exact_at(&mut bytes, offset).unwrap();
    u64::from_be_bytes(bytes)
}

/// Creates an image with one written cluster, so it has an L2 table.
fn image(dir: &TempDir, name: &str, backing: Option<(PathBuf, Format)>) -> PathBuf {
    let path = dir.join(name);
    let options = CreateOptions { virtual_size: Some(4 << 20), backing, ..CreateOptions::default() };
    Qcow2Image::create(&path, &options).unwrap();
    let mut chain = Chain::open(
        &path,
        &OpenOptions { writable: true, allowed_dir: AllowedDir::Anywhere, ..OpenOptions::default() },
    )
    .unwrap();
    chain.write(0, &[1; 4096]).unwrap();
    chain.close().unwrap();
    path
}

fn open_error(path: &Path, options: &OpenOptions) -> Qcow2Error {
    match Chain::open(path, options) {
        Ok(_) => panic!("{} opened, but an error was expected", path.display()),
        Err(error) => error,
    }
}

fn assert_error(error: &Qcow2Error, code: &str, file: &Path, offset: u64) {
    assert_eq!(error.code(), code, "{error}");
    assert_eq!(error.file(), Some(file), "{error}");
    assert_eq!(error.offset(), Some(offset), "{error}");
}

#[test]
fn unknown_incompatible_bit_is_rejected() {
    let dir = TempDir::new("reject-incompat");
    let path = image(&dir, "a.qcow2", None);
    patch(&path, INCOMPATIBLE_FEATURES, &(1u64 << 40).to_be_bytes());
    let error = open_error(&path, &OpenOptions::default());
    assert_error(&error, "ERR_QCOW2_UNSUPPORTED", &path, INCOMPATIBLE_FEATURES);
    assert!(error.to_string().contains("unknown incompatible feature bits"), "{error}");
}

#[test]
fn dirty_bit_is_rejected() {
    let dir = TempDir::new("reject-dirty");
    let path = image(&dir, "a.qcow2", None);
    patch(&path, INCOMPATIBLE_FEATURES, &1u64.to_be_bytes());
    assert_error(&open_error(&path, &OpenOptions::default()), "ERR_QCOW2_DIRTY", &path, INCOMPATIBLE_FEATURES);
}

#[test]
fn corrupt_bit_is_rejected() {
    let dir = TempDir::new("reject-corrupt");
    let path = image(&dir, "a.qcow2", None);
    patch(&path, INCOMPATIBLE_FEATURES, &2u64.to_be_bytes());
    let error = open_error(&path, &OpenOptions::default());
    assert_error(&error, "ERR_QCOW2_MARKED_CORRUPT", &path, INCOMPATIBLE_FEATURES);
}

#[test]
fn external_data_file_is_rejected() {
    let dir = TempDir::new("reject-data-file");
    let path = dir.join("a.qcow2");
    let data = dir.join("a.data");
    let option = format!("data_file={}", path_str(&data));
    run_ok("qemu-img", &["create", "-q", "-f", "qcow2", "-o", &option, path_str(&path), "1M"]);
    let error = open_error(&path, &OpenOptions::default());
    assert_error(&error, "ERR_QCOW2_UNSUPPORTED", &path, INCOMPATIBLE_FEATURES);
    assert!(error.to_string().contains("external data file"), "{error}");
}

#[test]
fn encryption_is_rejected() {
    let dir = TempDir::new("reject-crypt");
    let path = image(&dir, "a.qcow2", None);
    patch(&path, CRYPT_METHOD, &2u32.to_be_bytes());
    let error = open_error(&path, &OpenOptions::default());
    assert_error(&error, "ERR_QCOW2_UNSUPPORTED", &path, CRYPT_METHOD);
    assert!(error.to_string().contains("encryption"), "{error}");
}

#[test]
fn compressed_cluster_is_rejected_when_read() {
    let dir = TempDir::new("reject-compressed");
    let raw = dir.join("a.raw");
    let path = dir.join("a.qcow2");
    std::fs::write(&raw, vec![0x61u8; 1 << 20]).unwrap();
    run_ok("qemu-img", &["convert", "-c", "-f", "raw", "-O", "qcow2", path_str(&raw), path_str(&path)]);

    let mut chain = Chain::open(&path, &OpenOptions::default()).unwrap();
    let error = chain.read(0, &mut [0u8; 512]).unwrap_err();
    let l1_offset = read_u64(&path, L1_TABLE_OFFSET);
    let l2_offset = read_u64(&path, l1_offset) & 0x00ff_ffff_ffff_fe00;
    assert_error(&error, "ERR_QCOW2_UNSUPPORTED", &path, l2_offset);
    assert!(error.to_string().contains("compressed"), "{error}");
}

#[test]
fn unaligned_l1_table_offset_is_rejected() {
    let dir = TempDir::new("reject-l1-align");
    let path = image(&dir, "a.qcow2", None);
    let l1_offset = read_u64(&path, L1_TABLE_OFFSET);
    patch(&path, L1_TABLE_OFFSET, &(l1_offset + 512).to_be_bytes());
    assert_error(&open_error(&path, &OpenOptions::default()), "ERR_QCOW2_CORRUPT", &path, L1_TABLE_OFFSET);
}

#[test]
fn l1_table_past_end_of_file_is_rejected() {
    let dir = TempDir::new("reject-l1-eof");
    let path = image(&dir, "a.qcow2", None);
    patch(&path, L1_TABLE_OFFSET, &(1u64 << 40).to_be_bytes());
    assert_error(&open_error(&path, &OpenOptions::default()), "ERR_QCOW2_CORRUPT", &path, L1_TABLE_OFFSET);
}

#[test]
fn unaligned_l2_table_offset_is_rejected() {
    let dir = TempDir::new("reject-l2-align");
    let path = image(&dir, "a.qcow2", None);
    let l1_offset = read_u64(&path, L1_TABLE_OFFSET);
    let entry = read_u64(&path, l1_offset);
    patch(&path, l1_offset, &(entry + 4096).to_be_bytes());
    assert_error(&open_error(&path, &OpenOptions::default()), "ERR_QCOW2_CORRUPT", &path, l1_offset);
}

#[test]
fn l2_table_past_end_of_file_is_rejected() {
    let dir = TempDir::new("reject-l2-eof");
    let path = image(&dir, "a.qcow2", None);
    let l1_offset = read_u64(&path, L1_TABLE_OFFSET);
    patch(&path, l1_offset, &((1u64 << 63) | (1 << 40)).to_be_bytes());
    assert_error(&open_error(&path, &OpenOptions::default()), "ERR_QCOW2_CORRUPT", &path, l1_offset);
}

#[test]
fn unaligned_refcount_table_offset_is_rejected() {
    let dir = TempDir::new("reject-rt-align");
    let path = image(&dir, "a.qcow2", None);
    patch(&path, REFCOUNT_TABLE_OFFSET, &(65536u64 + 8).to_be_bytes());
    assert_error(&open_error(&path, &OpenOptions::default()), "ERR_QCOW2_CORRUPT", &path, REFCOUNT_TABLE_OFFSET);
}

#[test]
fn refcount_table_past_end_of_file_is_rejected() {
    let dir = TempDir::new("reject-rt-eof");
    let path = image(&dir, "a.qcow2", None);
    patch(&path, REFCOUNT_TABLE_OFFSET, &(1u64 << 40).to_be_bytes());
    assert_error(&open_error(&path, &OpenOptions::default()), "ERR_QCOW2_CORRUPT", &path, REFCOUNT_TABLE_OFFSET);
}

#[test]
fn refcount_block_past_end_of_file_is_rejected() {
    let dir = TempDir::new("reject-rb-eof");
    let path = image(&dir, "a.qcow2", None);
    let table = read_u64(&path, REFCOUNT_TABLE_OFFSET);
    patch(&path, table, &(1u64 << 40).to_be_bytes());
    assert_error(&open_error(&path, &OpenOptions::default()), "ERR_QCOW2_CORRUPT", &path, table);
}

#[test]
fn unaligned_refcount_block_is_rejected() {
    let dir = TempDir::new("reject-rb-align");
    let path = image(&dir, "a.qcow2", None);
    let table = read_u64(&path, REFCOUNT_TABLE_OFFSET);
    let entry = read_u64(&path, table);
    patch(&path, table, &(entry + 1024).to_be_bytes());
    assert_error(&open_error(&path, &OpenOptions::default()), "ERR_QCOW2_CORRUPT", &path, table);
}

/// Builds a chain of `count` images, each over the one before; returns them bottom first.
fn chain_of(dir: &TempDir, count: usize) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for index in 0..count {
        let path = dir.join(&format!("layer{index}.qcow2"));
        let backing = paths.last().map(|below| (below.clone(), Format::Qcow2));
        let options = CreateOptions { virtual_size: Some(1 << 20), cluster_size: 512, backing };
        Qcow2Image::create(&path, &options).unwrap();
        paths.push(path);
    }
    paths
}

#[test]
fn chain_deeper_than_limit_is_rejected() {
    let dir = TempDir::new("reject-depth");
    let paths = chain_of(&dir, 4);
    let top = &paths[3];
    let options = OpenOptions { max_depth: 3, ..OpenOptions::default() };
    let error = open_error(top, &options);
    // The third image from the top is the one whose backing file would be the fourth.
    let name_offset = read_u64(&paths[1], BACKING_FILE_OFFSET);
    assert_error(&error, "ERR_QCOW2_CHAIN_TOO_DEEP", &paths[1], name_offset);
    assert!(Chain::open(top, &OpenOptions { max_depth: 4, ..OpenOptions::default() }).is_ok());
}

#[test]
fn default_depth_limit_is_64_images() {
    let dir = TempDir::new("reject-depth-64");
    let paths = chain_of(&dir, 65);
    assert!(Chain::open(&paths[63], &OpenOptions::default()).is_ok());
    let error = open_error(&paths[64], &OpenOptions::default());
    assert_eq!(error.code(), "ERR_QCOW2_CHAIN_TOO_DEEP");
    assert_eq!(error.file(), Some(paths[1].as_path()));
}

#[test]
fn backing_cycle_is_rejected() {
    let dir = TempDir::new("reject-cycle");
    let paths = chain_of(&dir, 2);
    // Point the bottom image at the top one.
    run_ok("qemu-img", &["rebase", "-u", "-f", "qcow2", "-b", "layer1.qcow2", "-F", "qcow2", path_str(&paths[0])]);
    let error = open_error(&paths[1], &OpenOptions::default());
    let name_offset = read_u64(&paths[0], BACKING_FILE_OFFSET);
    assert_error(&error, "ERR_QCOW2_BACKING_CYCLE", &paths[0], name_offset);
}

#[test]
fn backing_outside_allowed_dir_is_rejected() {
    let dir = TempDir::new("reject-outside");
    std::fs::create_dir(dir.join("base")).unwrap();
    std::fs::create_dir(dir.join("top")).unwrap();
    let base = image(&dir, "base/base.qcow2", None);
    let top = image(&dir, "top/top.qcow2", Some((base, Format::Qcow2)));

    let error = open_error(&top, &OpenOptions::default());
    let name_offset = read_u64(&top, BACKING_FILE_OFFSET);
    assert_error(&error, "ERR_QCOW2_BACKING_REJECTED", &top, name_offset);

    assert!(Chain::open(&top, &OpenOptions { allowed_dir: AllowedDir::Dir(dir.0.clone()), ..OpenOptions::default() })
        .is_ok());
    assert!(Chain::open(&top, &OpenOptions { allowed_dir: AllowedDir::Anywhere, ..OpenOptions::default() }).is_ok());
}

#[test]
fn protocol_and_json_backing_names_are_rejected() {
    let dir = TempDir::new("reject-protocol");
    let base = image(&dir, "base.qcow2", None);
    for name in ["nbd:a:1234", "http://a/b", "json:{\"a\"}"] {
        assert_eq!(name.len(), "base.qcow2".len());
        let top = image(&dir, "top.qcow2", Some((base.clone(), Format::Qcow2)));
        let name_offset = read_u64(&top, BACKING_FILE_OFFSET);
        patch(&top, name_offset, name.as_bytes());
        // Even with every directory allowed, the name is never followed.
        let options = OpenOptions { allowed_dir: AllowedDir::Anywhere, ..OpenOptions::default() };
        assert_error(&open_error(&top, &options), "ERR_QCOW2_BACKING_REJECTED", &top, name_offset);
    }
}

#[test]
fn missing_backing_format_is_rejected() {
    let dir = TempDir::new("reject-no-format");
    let base = image(&dir, "base.qcow2", None);
    let top = image(&dir, "top.qcow2", Some((base, Format::Qcow2)));
    // The backing format extension starts right after the 104-byte header;
    // turning its type into an unknown one makes readers skip it.
    patch(&top, 104, &0x1234_5678u32.to_be_bytes());
    let name_offset = read_u64(&top, BACKING_FILE_OFFSET);
    assert_error(&open_error(&top, &OpenOptions::default()), "ERR_QCOW2_BACKING_FORMAT_MISSING", &top, name_offset);
}

#[test]
fn writing_a_read_only_chain_is_rejected() {
    let dir = TempDir::new("reject-read-only");
    let path = image(&dir, "a.qcow2", None);
    let mut chain = Chain::open(&path, &OpenOptions::default()).unwrap();
    assert_eq!(chain.write(0, &[1]).unwrap_err().code(), "ERR_QCOW2_READ_ONLY");
    assert_eq!(chain.write_zeroes(0, 512).unwrap_err().code(), "ERR_QCOW2_READ_ONLY");
}

#[test]
fn bad_create_options_are_rejected() {
    let dir = TempDir::new("reject-create");
    for cluster_size in [256, 3000, 4 << 20] {
        let options = CreateOptions { virtual_size: Some(1 << 20), cluster_size, backing: None };
        let error = Qcow2Image::create(&dir.join("a.qcow2"), &options).unwrap_err();
        assert_eq!(error.code(), "ERR_QCOW2_INVALID_ARGUMENT", "cluster size {cluster_size}");
    }
    let options = CreateOptions { virtual_size: Some(1000), ..CreateOptions::default() };
    assert_eq!(Qcow2Image::create(&dir.join("a.qcow2"), &options).unwrap_err().code(), "ERR_QCOW2_INVALID_ARGUMENT");
}

#[test]
fn image_as_own_backing_is_rejected() {
    let dir = TempDir::new("reject-self-backing");
    let path = image(&dir, "a.qcow2", None);
    let options = CreateOptions { backing: Some((path.clone(), Format::Qcow2)), ..CreateOptions::default() };
    assert_eq!(Qcow2Image::create(&path, &options).unwrap_err().code(), "ERR_QCOW2_INVALID_ARGUMENT");
    assert_check_clean(&path);
}

#[test]
fn fifo_backing_is_rejected_without_blocking() {
    let dir = TempDir::new("reject-fifo");
    let base = image(&dir, "base.qcow2", None);
    let top = image(&dir, "top.qcow2", Some((base.clone(), Format::Qcow2)));
    std::fs::remove_file(&base).unwrap();
    run_ok("mkfifo", &[path_str(&base)]);

    let name_offset = read_u64(&top, BACKING_FILE_OFFSET);
    assert_error(&open_error(&top, &OpenOptions::default()), "ERR_QCOW2_BACKING_REJECTED", &top, name_offset);
    let error = Chain::open(&base, &OpenOptions::default()).err().expect("a FIFO is not an image");
    assert_eq!(error.code(), "ERR_QCOW2_INVALID_ARGUMENT");
}
