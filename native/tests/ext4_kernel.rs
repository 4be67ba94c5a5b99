//! The kernel's view: mount an image written here read-write through a
//! loop device, check the tree, write to it, and check e2fsck agrees
//! afterwards, including after journal replay of a crash image.
//!
//! Needs root (for mount); without it the test reports and passes.

mod ext4_common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ext4_common::*;
use layerdisk_native::ext4::SpecialKind;

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program} does not run: {e}"));
    assert!(output.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// A loop mount, unmounted on drop even when the test fails.
struct Mount {
    point: PathBuf,
    mounted: bool,
}

impl Mount {
    fn new(image: &Path, point: PathBuf) -> Mount {
        std::fs::create_dir_all(&point).unwrap();
        // A long commit interval keeps the journal still between our syncs.
        run("mount", &["-t", "ext4", "-o", "loop,commit=600", image.to_str().unwrap(), point.to_str().unwrap()]);
        Mount { point, mounted: true }
    }

    fn unmount(&mut self) {
        if self.mounted {
            run("umount", &[self.point.to_str().unwrap()]);
            self.mounted = false;
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.point).status();
        }
    }
}

fn build_image(image: &Path) {
    let mut fs = format_file(image, 512 << 20);
    fs.mkdir(b"etc", &attrs(0o755)).unwrap();
    fs.write_whole_file(b"etc/motd", &attrs(0o644), b"hello from layerdisk\n").unwrap();
    fs.write_whole_file(b"blob", &attrs(0o600), &vec![0x3C; 5 << 20]).unwrap();
    fs.symlink(b"motd", b"etc/motd", &attrs(0)).unwrap();
    fs.symlink(b"long", &[b'a'; 300], &attrs(0)).unwrap();
    fs.link(b"etc/motd-again", b"etc/motd").unwrap();
    fs.mknod(b"null", SpecialKind::CharDevice { major: 1, minor: 3 }, &attrs(0o666)).unwrap();
    fs.set_xattr(b"blob", b"user.note", &vec![b'n'; 1500]).unwrap();
    fs.mkdir(b"many", &attrs(0o755)).unwrap();
    for i in 0..3000 {
        fs.write_whole_file(format!("many/file-{i}").as_bytes(), &attrs(0o644), format!("{i}\n").as_bytes()).unwrap();
    }
    fs.commit().unwrap();
}

fn check_tree(root: &Path) {
    assert_eq!(std::fs::read_to_string(root.join("etc/motd")).unwrap(), "hello from layerdisk\n");
    assert_eq!(std::fs::read(root.join("blob")).unwrap(), vec![0x3C; 5 << 20]);
    assert_eq!(std::fs::read_link(root.join("motd")).unwrap(), Path::new("etc/motd"));
    assert_eq!(std::fs::read_link(root.join("long")).unwrap().as_os_str().len(), 300);
    let meta = std::fs::metadata(root.join("etc/motd")).unwrap();
    assert_eq!((meta.mode() & 0o7777, meta.uid(), meta.gid(), meta.nlink()), (0o644, 1000, 1000, 2));
    assert_eq!(std::fs::symlink_metadata(root.join("null")).unwrap().rdev(), (1 << 8) | 3);
    assert_eq!(std::fs::read_dir(root.join("many")).unwrap().count(), 3000);
    assert_eq!(std::fs::read_to_string(root.join("many/file-2999")).unwrap(), "2999\n");
}

#[test]
fn kernel_mounts_writes_and_replays() {
    if !is_root() {
        eprintln!("skipping the kernel mount test: mounting needs root");
        return;
    }
    let scratch = Scratch::new("kernel");
    let image = scratch.path("fs.img");
    build_image(&image);
    assert_fsck_clean(&image);

    let mut mount = Mount::new(&image, scratch.path("mnt"));
    check_tree(&mount.point);
    for i in 0..2000 {
        std::fs::write(mount.point.join(format!("many/kernel-{i}")), vec![b'k'; 1000 + i]).unwrap();
    }
    std::fs::remove_file(mount.point.join("many/file-7")).unwrap();
    std::fs::create_dir_all(mount.point.join("new/dir")).unwrap();
    std::fs::write(mount.point.join("new/dir/data"), vec![7u8; 3 << 20]).unwrap();
    run("sync", &["-f", mount.point.to_str().unwrap()]);

    // The journal now contains committed transactions that may not be
    // checkpointed yet. With the commit interval at 600 s the journal does
    // not change while we copy, so the copy is an image the kernel could
    // have left on a crash. Blocks written back during the copy are
    // rewritten by replay from the journal anyway.
    let crash = scratch.path("crash.img");
    run("cp", &["--sparse=always", image.to_str().unwrap(), crash.to_str().unwrap()]);
    for i in 0..500 {
        std::fs::write(mount.point.join(format!("new/unsynced-{i}")), b"lost on crash").unwrap();
    }
    mount.unmount();
    assert_fsck_clean(&image);
    let header = Command::new("dumpe2fs").arg("-h").arg(&crash).output().unwrap();
    let header = String::from_utf8_lossy(&header.stdout).into_owned();
    assert!(header.contains("needs_recovery"), "the crash image has nothing to replay:\n{header}");

    let mut replayed = Mount::new(&crash, scratch.path("mnt-crash"));
    assert_eq!(std::fs::read(replayed.point.join("new/dir/data")).unwrap(), vec![7u8; 3 << 20]);
    assert_eq!(std::fs::read(replayed.point.join("many/kernel-1999")).unwrap(), vec![b'k'; 2999]);
    replayed.unmount();
    assert_fsck_clean(&crash);

    // A later layer opens what the kernel wrote and changes it.
    let mut fs = open_file(&image);
    fs.remove(b"many/kernel-5").unwrap();
    fs.write_whole_file(b"new/dir/after-kernel", &attrs(0o644), b"layer").unwrap();
    fs.commit().unwrap();
    drop(fs);
    assert_fsck_clean(&image);
}
