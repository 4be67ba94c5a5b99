//! Helpers shared by the qcow2 integration tests: temporary directories,
//! a seeded generator, and `qemu-img`/`qemu-io` as oracles.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory under /tmp that is removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("layerdisk-qcow2-{name}-{}-{unique}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// SplitMix64: small, seedable, and the same on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Returns a number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|error| panic!("could not run {program}: {error}"))
}

/// Runs a command and panics with its output unless it exits with 0.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?} failed with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// Asserts that `qemu-img check` finds no errors and no leaks.
pub fn assert_check_clean(image: &Path) {
    let output = run("qemu-img", &["check", "-f", "qcow2", path_str(image)]);
    assert!(
        output.status.success(),
        "qemu-img check {} exited with {}:\n{}{}",
        image.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("No errors were found"), "qemu-img check {}:\n{text}", image.display());
    assert!(!text.contains("leaked"), "qemu-img check {}:\n{text}", image.display());
}

/// Asserts that `qemu-img compare` finds the two images identical.
pub fn assert_compare_identical(first: &Path, first_format: &str, second: &Path, second_format: &str) {
    let output =
        run("qemu-img", &["compare", "-f", first_format, "-F", second_format, path_str(first), path_str(second)]);
    assert!(
        output.status.success(),
        "qemu-img compare {} {}: {}\n{}{}",
        first.display(),
        second.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn sha256(path: &Path) -> String {
    run_ok("sha256sum", &[path_str(path)]).split_whitespace().next().unwrap_or_default().to_string()
}
