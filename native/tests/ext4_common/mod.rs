//! Helpers shared by the ext4 integration tests: scratch images, e2fsck,
//! debugfs, and a block device that records which blocks it wrote.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use layerdisk_native::block::{BlockDevice, RawFile};
use layerdisk_native::ext4::{format, Attrs, Filesystem, FormatOptions, OpenOptions, Timestamp};

/// A scratch directory under /tmp, removed on drop.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("layerdisk-ext4-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // LAYERDISK_TEST_KEEP=1 keeps the images for inspection.
        if std::env::var_os("LAYERDISK_TEST_KEEP").is_some() {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn options(size: u64) -> FormatOptions {
    FormatOptions { size, seed: b"sha256:test-chain".to_vec(), timestamp: 1_700_000_000, ..FormatOptions::default() }
}

pub fn format_file(path: &Path, size: u64) -> Filesystem {
    let device = RawFile::create(path, size).unwrap();
    format(Box::new(device), &options(size)).unwrap()
}

pub fn open_file(path: &Path) -> Filesystem {
    let device = RawFile::open(path, true).unwrap();
    Filesystem::open(Box::new(device), OpenOptions::default()).unwrap()
}

/// Runs `e2fsck -fn` and panics with its output unless it is clean.
pub fn assert_fsck_clean(path: &Path) {
    let output = Command::new("e2fsck").arg("-fn").arg(path).output().expect("e2fsck runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "e2fsck -fn {} failed ({}):\n{text}", path.display(), output.status);
}

/// Runs one debugfs request on the image and returns its standard output.
pub fn debugfs(path: &Path, request: &str) -> String {
    let output = Command::new("debugfs").arg("-R").arg(request).arg(path).output().expect("debugfs runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn attrs(mode: u16) -> Attrs {
    let time = Timestamp { seconds: 1_600_000_000, nanoseconds: 5 };
    Attrs { mode, uid: 1000, gid: 1000, atime: time, mtime: time, ctime: time }
}

/// A device that passes everything through and records the blocks it wrote.
pub struct Recording<D: BlockDevice> {
    pub inner: D,
    pub written: Arc<Mutex<BTreeSet<u64>>>,
}

impl<D: BlockDevice> Recording<D> {
    pub fn new(inner: D) -> (Self, Arc<Mutex<BTreeSet<u64>>>) {
        let written = Arc::new(Mutex::new(BTreeSet::new()));
        (Recording { inner, written: written.clone() }, written)
    }

    fn record(&self, offset: u64, length: u64) {
        let mut written = self.written.lock().unwrap();
        for block in offset / 4096..(offset + length).div_ceil(4096) {
            written.insert(block);
        }
    }
}

impl<D: BlockDevice> BlockDevice for Recording<D> {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.record(offset, buf.len() as u64);
        self.inner.write_at(offset, buf)
    }
    fn write_zeroes(&mut self, offset: u64, length: u64) -> io::Result<()> {
        self.record(offset, length);
        self.inner.write_zeroes(offset, length)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts the distinct clusters of `cluster_size` bytes that `blocks`
/// (4096-byte block numbers) touch.
pub fn clusters(blocks: &BTreeSet<u64>, cluster_size: u64) -> usize {
    blocks.iter().map(|b| b * 4096 / cluster_size).collect::<BTreeSet<_>>().len()
}
