//! Formatting and the basic entry types, checked with e2fsck and debugfs.

mod ext4_common;

use ext4_common::*;
use layerdisk_native::ext4::SpecialKind;

#[test]
fn fresh_format_is_clean() {
    let scratch = Scratch::new("fresh");
    let image = scratch.path("fs.img");
    drop(format_file(&image, 256 << 20));
    assert_fsck_clean(&image);
}

#[test]
fn default_size_format_is_clean_and_sparse() {
    let scratch = Scratch::new("default");
    let image = scratch.path("fs.img");
    drop(format_file(&image, 64 << 30));
    assert_fsck_clean(&image);
    let output = std::process::Command::new("du").arg("-k").arg(&image).output().unwrap();
    let kib: u64 = String::from_utf8_lossy(&output.stdout).split_whitespace().next().unwrap().parse().unwrap();
    assert!(kib < 4096, "a fresh 64 GiB image takes {kib} KiB");
}

#[test]
fn entry_types_are_clean() {
    let scratch = Scratch::new("types");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 256 << 20);
    fs.mkdir(b"etc", &attrs(0o755)).unwrap();
    fs.write_whole_file(b"etc/hosts", &attrs(0o644), b"127.0.0.1 localhost\n").unwrap();
    fs.write_whole_file(b"big", &attrs(0o600), &vec![0xAB; 3 * 1024 * 1024 + 17]).unwrap();
    fs.symlink(b"fast", b"etc/hosts", &attrs(0)).unwrap();
    fs.symlink(b"slow", &[b'x'; 4095], &attrs(0)).unwrap();
    fs.symlink(b"edge59", &[b'y'; 59], &attrs(0)).unwrap();
    fs.symlink(b"edge60", &[b'z'; 60], &attrs(0)).unwrap();
    fs.link(b"hosts-link", b"etc/hosts").unwrap();
    fs.link(b"etc/fast-link", b"fast").unwrap();
    fs.mknod(b"null", SpecialKind::CharDevice { major: 1, minor: 3 }, &attrs(0o666)).unwrap();
    fs.mknod(b"big-char", SpecialKind::CharDevice { major: 300, minor: 70000 }, &attrs(0o600)).unwrap();
    fs.mknod(b"nvme", SpecialKind::BlockDevice { major: 259, minor: 1048575 }, &attrs(0o600)).unwrap();
    fs.mknod(b"fifo", SpecialKind::Fifo, &attrs(0o644)).unwrap();
    fs.mknod(b"sock", SpecialKind::Socket, &attrs(0o755)).unwrap();
    fs.commit().unwrap();
    drop(fs);
    assert_fsck_clean(&image);

    // A later layer links to lower-layer symlinks and devices.
    let mut fs = open_file(&image);
    fs.link(b"slow-link", b"slow").unwrap();
    fs.link(b"etc/null-link", b"null").unwrap();
    fs.commit().unwrap();
    assert_eq!(fs.lstat(b"slow").unwrap().unwrap().links, 2);
    assert_eq!(fs.lstat(b"fast").unwrap().unwrap().links, 2);
    assert_eq!(fs.lstat(b"etc/null-link").unwrap().unwrap().links, 2);
    drop(fs);
    assert_fsck_clean(&image);

    let stat = debugfs(&image, "stat /big-char");
    assert!(stat.contains("Device major/minor number: 300:70000"), "{stat}");
    let stat = debugfs(&image, "stat /nvme");
    assert!(stat.contains("259:1048575"), "{stat}");
    let hosts = debugfs(&image, "cat /etc/hosts");
    assert_eq!(hosts, "127.0.0.1 localhost\n");
    let stat = debugfs(&image, "stat /etc/hosts");
    assert!(stat.contains("Links: 2"), "{stat}");

    let mut fs = open_file(&image);
    assert_eq!(fs.read_file(b"big").unwrap(), vec![0xAB; 3 * 1024 * 1024 + 17]);
    assert_eq!(fs.lstat(b"slow").unwrap().unwrap().target.unwrap(), vec![b'x'; 4095]);
    assert_eq!(fs.lstat(b"nvme").unwrap().unwrap().device, Some((259, 1048575)));
    assert_eq!(fs.lstat(b"big-char").unwrap().unwrap().device, Some((300, 70000)));
}

#[test]
fn corrupt_directory_block_is_reported() {
    let scratch = Scratch::new("corrupt");
    let image = scratch.path("fs.img");
    let mut fs = format_file(&image, 64 << 20);
    fs.mkdir(b"d", &attrs(0o755)).unwrap();
    fs.write_whole_file(b"d/f", &attrs(0o644), b"x").unwrap();
    fs.commit().unwrap();
    drop(fs);

    let text = debugfs(&image, "blocks /d");
    let block: u64 = text.split_whitespace().next().unwrap().parse().unwrap();
    let mut bytes = std::fs::read(&image).unwrap();
    bytes[(block * 4096 + 30) as usize] ^= 0x40;
    std::fs::write(&image, &bytes).unwrap();

    let mut fs = open_file(&image);
    let error = fs.lstat(b"d/f").unwrap_err();
    let report = layerdisk_native::report::ErrorReport::from(error);
    assert_eq!(report.code, "ERR_EXT4_CORRUPT");
    assert_eq!(report.offset, Some(block * 4096));
}

#[test]
fn mke2fs_image_accepts_a_layer() {
    let scratch = Scratch::new("mke2fs");
    let image = scratch.path("fs.img");
    let tree = scratch.path("tree");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::write(tree.join("etc/os-release"), "ID=test\n").unwrap();
    for i in 0..400 {
        std::fs::write(tree.join(format!("etc/file-{i}")), format!("{i}")).unwrap();
    }
    let status = std::process::Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(&tree)
        .arg(&image)
        .arg("600M")
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));

    let mut fs = open_file(&image);
    assert_eq!(fs.read_file(b"etc/os-release").unwrap(), b"ID=test\n");
    fs.remove(b"etc/file-3").unwrap();
    for i in 0..600 {
        fs.write_whole_file(format!("etc/new-{i}").as_bytes(), &attrs(0o644), &vec![3; 9000]).unwrap();
    }
    fs.mkdir(b"var", &attrs(0o755)).unwrap();
    fs.write_whole_file(b"var/big", &attrs(0o644), &vec![5; 300 << 20]).unwrap();
    fs.commit().unwrap();
    assert_eq!(fs.read_dir(b"etc").unwrap().len(), 1000);
    drop(fs);
    assert_fsck_clean(&image);
}

#[test]
fn corrupt_bitmap_is_reported() {
    let scratch = Scratch::new("corrupt-bitmap");
    let image = scratch.path("fs.img");
    drop(format_file(&image, 64 << 20));
    let output = std::process::Command::new("dumpe2fs").arg(&image).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let at = text.find("Block bitmap at ").unwrap() + "Block bitmap at ".len();
    let block: u64 = text[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
    let mut bytes = std::fs::read(&image).unwrap();
    bytes[(block * 4096 + 3000) as usize] ^= 0x01;
    std::fs::write(&image, &bytes).unwrap();

    let mut fs = open_file(&image);
    let error = fs.write_whole_file(b"f", &attrs(0o644), b"data").unwrap_err();
    let report = layerdisk_native::report::ErrorReport::from(error);
    assert_eq!(report.code, "ERR_EXT4_CORRUPT");
    assert_eq!(report.offset, Some(block * 4096));
    assert!(fs.lstat(b"f").unwrap().is_none());
}
