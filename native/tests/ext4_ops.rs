//! Attributes, removal, large files and large directories, each checked
//! with e2fsck -fn and read back.

mod ext4_common;

use ext4_common::*;
use layerdisk_native::ext4::{Ext4Error, Timestamp};

fn acl_xattr(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut bytes = 2u32.to_le_bytes().to_vec();
    for &(tag, perm, id) in entries {
        bytes.extend_from_slice(&tag.to_le_bytes());
        bytes.extend_from_slice(&perm.to_le_bytes());
        bytes.extend_from_slice(&id.to_le_bytes());
    }
    bytes
}

#[test]
fn xattrs_and_acls_round_trip() {
    let scratch = Scratch::new("xattrs");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 128 << 20);
    fs.write_whole_file(b"ping", &attrs(0o755), b"elf").unwrap();
    fs.mkdir(b"shared", &attrs(0o775)).unwrap();
    let capability = vec![1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    fs.set_xattr(b"ping", b"security.capability", &capability).unwrap();
    fs.set_xattr(b"ping", b"user.small", b"v").unwrap();
    fs.set_xattr(b"ping", b"trusted.big", &vec![7u8; 2000]).unwrap();
    let access = acl_xattr(&[(1, 7, u32::MAX), (2, 5, 1000), (4, 5, u32::MAX), (0x10, 7, u32::MAX), (0x20, 0, u32::MAX)]);
    let default = acl_xattr(&[(1, 7, u32::MAX), (4, 5, u32::MAX), (8, 7, 2000), (0x10, 7, u32::MAX), (0x20, 5, u32::MAX)]);
    fs.set_xattr(b"shared", b"system.posix_acl_access", &access).unwrap();
    fs.set_xattr(b"shared", b"system.posix_acl_default", &default).unwrap();
    fs.commit().unwrap();
    drop(fs);
    assert_fsck_clean(&image);

    let listing = debugfs(&image, "ea_list /ping");
    for name in ["user.small", "trusted.big", "security.capability"] {
        assert!(listing.contains(name), "{name} missing from {listing}");
    }
    let listing = debugfs(&image, "ea_list /shared");
    for name in ["system.posix_acl_access", "system.posix_acl_default"] {
        assert!(listing.contains(name), "{name} missing from {listing}");
    }

    let mut fs = open_file(&image);
    let xattrs = fs.xattrs(b"shared").unwrap();
    assert!(xattrs.contains(&(b"system.posix_acl_access".to_vec(), access.clone())));
    assert!(xattrs.contains(&(b"system.posix_acl_default".to_vec(), default.clone())));

    // Replace the big value with a small one, so the block goes away.
    fs.set_xattr(b"ping", b"trusted.big", b"small now").unwrap();
    assert!(fs.remove_xattr(b"ping", b"user.small").unwrap());
    assert!(!fs.remove_xattr(b"ping", b"user.small").unwrap());
    fs.commit().unwrap();
    drop(fs);
    assert_fsck_clean(&image);
    let mut fs = open_file(&image);
    let xattrs = fs.xattrs(b"ping").unwrap();
    assert_eq!(xattrs.len(), 2);
    assert!(xattrs.contains(&(b"trusted.big".to_vec(), b"small now".to_vec())));
    assert!(xattrs.contains(&(b"security.capability".to_vec(), capability)));
}

#[test]
fn timestamps_keep_extra_epoch_bits() {
    let scratch = Scratch::new("times");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 64 << 20);
    let mut a = attrs(0o644);
    a.mtime = Timestamp { seconds: -86_400 * 365 * 30, nanoseconds: 123_456_789 };
    a.atime = Timestamp { seconds: 4_102_444_800 + 7, nanoseconds: 999_999_999 };
    a.ctime = Timestamp { seconds: 1 << 33, nanoseconds: 1 };
    a.uid = 4_000_000_000;
    a.gid = 70_000;
    fs.write_whole_file(b"f", &a, b"x").unwrap();
    fs.commit().unwrap();
    drop(fs);
    assert_fsck_clean(&image);
    let mut fs = open_file(&image);
    let stat = fs.lstat(b"f").unwrap().unwrap();
    assert_eq!((stat.mtime, stat.atime, stat.ctime), (a.mtime, a.atime, a.ctime));
    assert_eq!((stat.uid, stat.gid), (4_000_000_000, 70_000));
    let text = debugfs(&image, "stat /f");
    assert!(text.contains("mtime: 0xc79bf700:1d6f3454"), "{text}");
}

#[test]
fn removal_keeps_counts_right() {
    let scratch = Scratch::new("remove");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 128 << 20);
    fs.mkdir(b"a", &attrs(0o755)).unwrap();
    fs.mkdir(b"a/b", &attrs(0o755)).unwrap();
    fs.mkdir(b"keep", &attrs(0o755)).unwrap();
    for i in 0..300 {
        fs.write_whole_file(format!("a/b/f{i}").as_bytes(), &attrs(0o644), &vec![i as u8 + 1; 5000]).unwrap();
    }
    fs.link(b"keep/linked", b"a/b/f7").unwrap();
    fs.symlink(b"a/long-link", &[b'q'; 300], &attrs(0)).unwrap();
    fs.set_xattr(b"a/b/f9", b"user.big", &vec![1; 3000]).unwrap();
    fs.commit().unwrap();
    drop(fs);
    assert_fsck_clean(&image);

    let mut fs = open_file(&image);
    fs.remove(b"a").unwrap();
    fs.commit().unwrap();
    assert!(fs.lstat(b"a").unwrap().is_none());
    assert_eq!(fs.read_file(b"keep/linked").unwrap(), vec![8u8; 5000]);
    assert_eq!(fs.lstat(b"keep/linked").unwrap().unwrap().links, 1);
    drop(fs);
    assert_fsck_clean(&image);

    // Replace a file with a directory and a directory with a file.
    let mut fs = open_file(&image);
    fs.mkdir(b"keep/linked", &attrs(0o700)).unwrap();
    fs.write_whole_file(b"keep", &attrs(0o600), b"now a file").unwrap();
    fs.commit().unwrap();
    assert_eq!(fs.read_file(b"keep").unwrap(), b"now a file");
    drop(fs);
    assert_fsck_clean(&image);
}

#[test]
fn opaque_directory_clears_children() {
    let scratch = Scratch::new("opaque");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 64 << 20);
    fs.mkdir(b"d", &attrs(0o755)).unwrap();
    fs.mkdir(b"d/sub", &attrs(0o755)).unwrap();
    fs.write_whole_file(b"d/sub/x", &attrs(0o644), b"x").unwrap();
    fs.write_whole_file(b"d/y", &attrs(0o644), b"y").unwrap();
    fs.commit().unwrap();
    fs.clear_dir(b"d").unwrap();
    fs.commit().unwrap();
    assert!(fs.read_dir(b"d").unwrap().is_empty());
    assert_eq!(fs.lstat(b"d").unwrap().unwrap().links, 2);
    drop(fs);
    assert_fsck_clean(&image);
}

#[test]
fn sparse_files_beyond_4gib_and_near_16tib() {
    let scratch = Scratch::new("sparse");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 256 << 20);
    fs.begin_file(b"5g", &attrs(0o644)).unwrap();
    fs.write_file(b"head").unwrap();
    fs.skip_file(5 << 30).unwrap();
    fs.write_file(b"tail").unwrap();
    fs.finish_file().unwrap();

    let max = ((1u64 << 32) - 1) * 4096;
    fs.begin_file(b"max", &attrs(0o644)).unwrap();
    fs.skip_file(max - 4096).unwrap();
    fs.write_file(&[9u8; 4096]).unwrap();
    fs.finish_file().unwrap();

    fs.begin_file(b"too-big", &attrs(0o644)).unwrap();
    let error = fs.skip_file(max + 1).unwrap_err();
    assert!(matches!(error, Ext4Error::FileTooLarge { .. }), "{error}");
    assert!(fs.lstat(b"too-big").unwrap().is_none());

    // Many small extents force an extent tree with index blocks.
    fs.begin_file(b"fragmented", &attrs(0o644)).unwrap();
    for _ in 0..3000 {
        fs.write_file(&[1u8; 4096]).unwrap();
        fs.skip_file(4096).unwrap();
    }
    fs.finish_file().unwrap();
    fs.commit().unwrap();
    drop(fs);
    assert_fsck_clean(&image);

    let mut fs = open_file(&image);
    assert_eq!(fs.lstat(b"5g").unwrap().unwrap().size, (5 << 30) + 8);
    assert_eq!(fs.lstat(b"max").unwrap().unwrap().size, max);
    let text = debugfs(&image, "stat /fragmented");
    assert!(text.contains("(ETB0)"), "expected an index block:\n{}", &text[..text.len().min(2000)]);
}

#[test]
fn large_directory_over_three_layers() {
    let scratch = Scratch::new("bigdir");
    let image = scratch.path("fs.img");
    drop(format_file(&image, 4 << 30));
    let mut fs = open_file(&image);
    fs.mkdir(b"d", &attrs(0o755)).unwrap();
    for i in 0..60_000 {
        fs.mknod(format!("d/entry-{i:06}").as_bytes(), layerdisk_native::ext4::SpecialKind::Fifo, &attrs(0o644)).unwrap();
    }
    fs.commit().unwrap();
    drop(fs);

    let mut fs = open_file(&image);
    for i in (0..60_000).step_by(3) {
        fs.remove(format!("d/entry-{i:06}").as_bytes()).unwrap();
    }
    for i in 60_000..100_000 {
        fs.mknod(format!("d/entry-{i:06}").as_bytes(), layerdisk_native::ext4::SpecialKind::Fifo, &attrs(0o644)).unwrap();
    }
    fs.commit().unwrap();
    drop(fs);

    let mut fs = open_file(&image);
    for i in (0..60_000).step_by(3) {
        fs.mknod(format!("d/entry-{i:06}").as_bytes(), layerdisk_native::ext4::SpecialKind::Socket, &attrs(0o644)).unwrap();
    }
    fs.commit().unwrap();
    assert_eq!(fs.read_dir(b"d").unwrap().len(), 100_000);
    assert!(fs.lstat(b"d/entry-099999").unwrap().is_some());
    drop(fs);
    assert_fsck_clean(&image);
    let text = debugfs(&image, "htree /d");
    assert!(text.contains("Indirect levels: 1"), "{}", &text[..text.len().min(500)]);
}

#[test]
fn empty_hole_keeps_partial_block() {
    let scratch = Scratch::new("empty-hole");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 64 << 20);
    let data: Vec<u8> = (0..7462u32).map(|i| (i % 251) as u8 + 1).collect();
    fs.begin_file(b"f", &attrs(0o644)).unwrap();
    fs.write_file(&data).unwrap();
    fs.skip_file(0).unwrap();
    fs.skip_file(10).unwrap();
    fs.write_file(b"end").unwrap();
    fs.finish_file().unwrap();
    let mut expected = data.clone();
    expected.extend_from_slice(&[0; 10]);
    expected.extend_from_slice(b"end");
    assert_eq!(fs.read_file(b"f").unwrap(), expected);
    fs.commit().unwrap();
    drop(fs);
    assert_fsck_clean(&image);
}

#[test]
fn symlinks_resolve_inside_image() {
    let scratch = Scratch::new("resolve");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 64 << 20);
    fs.mkdir(b"usr", &attrs(0o755)).unwrap();
    fs.mkdir(b"usr/lib", &attrs(0o755)).unwrap();
    fs.symlink(b"lib", b"usr/lib", &attrs(0)).unwrap();
    fs.symlink(b"usr/lib64", b"/lib/../../../usr/lib", &attrs(0)).unwrap();
    fs.symlink(b"loop", b"loop", &attrs(0)).unwrap();
    fs.write_whole_file(b"file", &attrs(0o644), b"x").unwrap();

    assert_eq!(fs.resolve_symlinks(b"lib/x.so").unwrap(), b"usr/lib/x.so");
    assert_eq!(fs.resolve_symlinks(b"/usr/lib64/new/deeper").unwrap(), b"usr/lib/new/deeper");
    assert_eq!(fs.resolve_symlinks(b"lib").unwrap(), b"usr/lib");
    assert_eq!(fs.resolve_symlinks(b"../../etc").unwrap(), b"etc");
    assert!(matches!(fs.resolve_symlinks(b"loop/x"), Err(Ext4Error::InvalidArgument { .. })));
    assert!(matches!(fs.resolve_symlinks(b"file/x"), Err(Ext4Error::NotADirectory { .. })));
}

#[test]
fn fragmented_directory_grows_in_place() {
    let scratch = Scratch::new("fragmented-dir");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 256 << 20);
    fs.mkdir(b"d", &attrs(0o755)).unwrap();
    for round in 0..8 {
        // Each round adds directory blocks, then file data right after them.
        for i in 0..60 {
            let name = format!("d/{round}-{i}-{}", "x".repeat(200));
            fs.mknod(name.as_bytes(), layerdisk_native::ext4::SpecialKind::Fifo, &attrs(0o644)).unwrap();
        }
        fs.write_whole_file(format!("data{round}").as_bytes(), &attrs(0o644), &vec![1; 40_000]).unwrap();
    }
    fs.commit().unwrap();
    assert_eq!(fs.read_dir(b"d").unwrap().len(), 480);
    drop(fs);
    assert_fsck_clean(&image);
    let text = debugfs(&image, "stat /d");
    assert!(text.contains("(ETB0)"), "expected an extent index block:\n{text}");
}

#[test]
fn subdirectory_links_past_limit() {
    let scratch = Scratch::new("dir-nlink");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 2 << 30);
    fs.mkdir(b"p", &attrs(0o755)).unwrap();
    for i in 0..65_001 {
        fs.mkdir(format!("p/{i}").as_bytes(), &attrs(0o755)).unwrap();
    }
    fs.commit().unwrap();
    assert_eq!(fs.lstat(b"p").unwrap().unwrap().links, 1);
    drop(fs);
    assert_fsck_clean(&image);

    let mut fs = open_file(&image);
    for i in 0..10 {
        fs.remove(format!("p/{i}").as_bytes()).unwrap();
    }
    fs.commit().unwrap();
    assert_eq!(fs.lstat(b"p").unwrap().unwrap().links, 2 + 64_991);
    drop(fs);
    assert_fsck_clean(&image);
}
