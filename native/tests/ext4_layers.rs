//! Layer behaviour: small deltas, byte-identical output, and typed errors
//! that leave nothing half-written.

mod ext4_common;

use ext4_common::*;
use layerdisk_native::block::RawFile;
use layerdisk_native::ext4::{Ext4Error, Filesystem, OpenOptions, SpecialKind};
use layerdisk_native::report::ErrorReport;

fn build_lower(fs: &mut Filesystem) {
    fs.mkdir(b"usr", &attrs(0o755)).unwrap();
    fs.mkdir(b"usr/bin", &attrs(0o755)).unwrap();
    for i in 0..500 {
        fs.write_whole_file(format!("usr/bin/tool{i}").as_bytes(), &attrs(0o755), &vec![i as u8; 10_000]).unwrap();
    }
}

#[test]
fn small_layers_write_few_clusters() {
    let scratch = Scratch::new("delta");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 1 << 30);
    build_lower(&mut fs);
    fs.commit().unwrap();
    drop(fs);

    let (device, written) = Recording::new(RawFile::open(&image, true).unwrap());
    let mut fs = Filesystem::open(Box::new(device), OpenOptions::default()).unwrap();
    let mut changed = attrs(0o700);
    changed.uid = 0;
    fs.set_attrs(b"usr/bin/tool250", &changed).unwrap();
    fs.commit().unwrap();
    drop(fs);

    let blocks = written.lock().unwrap().clone();
    let count = clusters(&blocks, 64 * 1024);
    eprintln!("a mode change wrote {count} clusters");
    assert!(count <= 3, "a mode change wrote {count} clusters: blocks {blocks:?}");
    assert_fsck_clean(&image);

    // Adding one small file touches the new inode and data, the bitmaps,
    // the group descriptor, the directory block and the superblock.
    let (device, written) = Recording::new(RawFile::open(&image, true).unwrap());
    let mut fs = Filesystem::open(Box::new(device), OpenOptions::default()).unwrap();
    fs.write_whole_file(b"usr/bin/added", &attrs(0o755), b"#!/bin/sh\n").unwrap();
    fs.commit().unwrap();
    drop(fs);
    let count = clusters(&written.lock().unwrap(), 64 * 1024);
    eprintln!("adding a small file wrote {count} clusters");
    assert!(count <= 8, "adding a small file wrote {count} clusters");
    assert_fsck_clean(&image);
}

#[test]
fn new_layer_data_avoids_lower_clusters() {
    let scratch = Scratch::new("fresh-clusters");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 1 << 30);
    build_lower(&mut fs);
    fs.commit().unwrap();
    drop(fs);

    let mut fs = open_file(&image);
    fs.remove(b"usr/bin/tool3").unwrap();
    fs.write_whole_file(b"usr/bin/new", &attrs(0o755), &vec![0x5A; 20_000]).unwrap();
    fs.commit().unwrap();
    drop(fs);

    // Freed blocks of tool3 are not reused: the new file lands after them.
    let mut fs = open_file(&image);
    let text = debugfs(&image, "blocks /usr/bin/new");
    let first: u64 = text.split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(first % 16, 0, "new data starts on a 64 KiB cluster boundary");

    // The new inode opens a fresh cluster of the inode table too.
    let text = debugfs(&image, "imap /usr/bin/new");
    let block: u64 = field_after(&text, "located at block ").trim_end_matches(',').parse().unwrap();
    let offset = u64::from_str_radix(field_after(&text, "offset 0x"), 16).unwrap();
    assert_eq!((block * 4096 + offset) % (64 * 1024), 0, "{text}");
    assert_eq!(fs.read_file(b"usr/bin/new").unwrap(), vec![0x5A; 20_000]);
    assert_fsck_clean(&image);
}

#[test]
fn same_input_gives_identical_images() {
    let scratch = Scratch::new("determinism");
    let mut images = Vec::new();
    for run in 0..2 {
        let image = scratch.path(&format!("run{run}.img"));
        let mut fs = format_file(&image, 512 << 20);
        build_lower(&mut fs);
        fs.symlink(b"usr/lib", b"bin", &attrs(0)).unwrap();
        fs.set_xattr(b"usr/bin/tool1", b"user.x", b"y").unwrap();
        fs.commit().unwrap();
        drop(fs);
        images.push(std::fs::read(&image).unwrap());
    }
    assert!(images[0] == images[1], "two runs produced different images");
}

fn report(error: Ext4Error) -> ErrorReport {
    ErrorReport::from(error)
}

#[test]
fn bad_input_gets_typed_errors() {
    let scratch = Scratch::new("errors");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 64 << 20);
    fs.write_whole_file(b"file", &attrs(0o644), b"data").unwrap();
    fs.commit().unwrap();

    let long = [b"dir/".to_vec(), vec![b'n'; 256]].concat();
    let error = report(fs.mkdir(&long, &attrs(0o755)).unwrap_err());
    assert_eq!(error.code, "ERR_EXT4_NAME_TOO_LONG");
    assert!(error.path.unwrap().starts_with("dir/nnn"));

    let error = report(fs.write_whole_file(b"file/inside", &attrs(0o644), b"x").unwrap_err());
    assert_eq!(error.code, "ERR_EXT4_NOT_A_DIRECTORY");
    assert_eq!(error.path.as_deref(), Some("file"));

    let error = report(fs.link(b"new-link", b"missing").unwrap_err());
    assert_eq!(error.code, "ERR_EXT4_NOT_FOUND");
    assert_eq!(error.path.as_deref(), Some("missing"));

    let error = report(fs.mknod(b"dev", SpecialKind::CharDevice { major: 4096, minor: 0 }, &attrs(0)).unwrap_err());
    assert_eq!(error.code, "ERR_EXT4_INVALID_ARGUMENT");

    let error = report(fs.set_xattr(b"file", b"bogus.name", b"v").unwrap_err());
    assert_eq!((error.code, error.path.as_deref()), ("ERR_EXT4_INVALID_ARGUMENT", Some("file")));

    assert!(fs.lstat(b"new-link").unwrap().is_none());
    assert!(fs.lstat(b"dev").unwrap().is_none());
    fs.commit().unwrap();
    drop(fs);
    assert_fsck_clean(&image);
}

#[test]
fn link_limit_is_enforced() {
    let scratch = Scratch::new("links");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 256 << 20);
    fs.mkdir(b"l", &attrs(0o755)).unwrap();
    fs.write_whole_file(b"target", &attrs(0o644), b"t").unwrap();
    for i in 1..65000 {
        fs.link(format!("l/{i}").as_bytes(), b"target").unwrap();
    }
    let error = report(fs.link(b"l/one-too-many", b"target").unwrap_err());
    assert_eq!(error.code, "ERR_EXT4_TOO_MANY_LINKS");
    assert_eq!(error.path.as_deref(), Some("target"));
    assert_eq!(fs.lstat(b"target").unwrap().unwrap().links, 65000);
    assert!(fs.lstat(b"l/one-too-many").unwrap().is_none());
    fs.commit().unwrap();
    drop(fs);
    assert_fsck_clean(&image);
}

#[test]
fn full_filesystem_keeps_nothing() {
    let scratch = Scratch::new("full");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 16 << 20);
    fs.write_whole_file(b"before", &attrs(0o644), &vec![1; 100_000]).unwrap();
    fs.commit().unwrap();
    let free_before = fs.superblock().free_blocks_count;

    fs.begin_file(b"huge", &attrs(0o644)).unwrap();
    let mut error = None;
    for _ in 0..40 {
        if let Err(e) = fs.write_file(&vec![0xEE; 1 << 20]) {
            error = Some(e);
            break;
        }
    }
    let error = report(error.expect("a 40 MiB file cannot fit in 16 MiB"));
    assert_eq!(error.code, "ERR_EXT4_NO_SPACE");
    assert_eq!(error.path.as_deref(), Some("huge"));
    assert!(fs.lstat(b"huge").unwrap().is_none());

    // The failed file left no trace, and the filesystem still works.
    fs.write_whole_file(b"after", &attrs(0o644), b"ok").unwrap();
    fs.commit().unwrap();
    assert_eq!(fs.superblock().free_blocks_count, free_before - 1);
    drop(fs);
    assert_fsck_clean(&image);
}

/// Returns the word after `label` in debugfs output.
fn field_after<'a>(text: &'a str, label: &str) -> &'a str {
    let at = text.find(label).unwrap_or_else(|| panic!("no {label:?} in {text}")) + label.len();
    text[at..].split_whitespace().next().unwrap()
}
