//! Process-crash consistency: a child process writes random data and is
//! killed at a random moment. Whatever the metadata write order left on
//! disk must pass `qemu-img check` without corruption (leaks are allowed),
//! read without errors, and take further writes.
//!
//! The seed is printed; set QCOW2_CRASH_SEED to replay the kill times.

mod qcow2_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use layerdisk_native::qcow2::{Chain, CreateOptions, Format, OpenOptions, Qcow2Image};
use qcow2_support::*;

const CHILD_ENV: &str = "QCOW2_CRASH_CHILD_IMAGE";
const SIZE: u64 = 32 << 20;

/// The writer run in the child process. In a normal test run the variable
/// is unset and this returns at once.
#[test]
fn crash_child_writer() {
    let Ok(image) = std::env::var(CHILD_ENV) else { return };
    let mut chain = Chain::open(Path::new(&image), &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
    let mut rng = Rng::new(std::process::id().into());
    let mut data = vec![0u8; 40_000];
    loop {
        let offset = rng.below(SIZE - data.len() as u64);
        let length = 1 + rng.below(data.len() as u64) as usize;
        if rng.below(4) == 0 {
            chain.write_zeroes(offset, length as u64).unwrap();
        } else {
            rng.fill(&mut data[..length]);
            chain.write(offset, &data[..length]).unwrap();
        }
        if rng.below(200) == 0 {
            chain.flush().unwrap();
        }
    }
}

fn check_allows_only_leaks(image: &Path) {
    let output = run("qemu-img", &["check", "-f", "qcow2", path_str(image)]);
    // Exit code 0: clean; 3: leaked clusters only. Anything else is corruption.
    let code = output.status.code();
    let summary = String::from_utf8_lossy(&output.stdout);
    let size = std::fs::metadata(image).map(|metadata| metadata.len()).unwrap_or(0);
    let leaks = summary.lines().find(|line| line.contains("leaked")).unwrap_or("no leaks");
    eprintln!("qemu-img check of a {size}-byte image: exit {code:?}, {leaks}");
    assert!(
        code == Some(0) || code == Some(3),
        "qemu-img check {} exited with {code:?}:\n{}{}",
        image.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn killed_writer_leaves_consistent_image() {
    let seed = match std::env::var("QCOW2_CRASH_SEED") {
        Ok(text) => text.parse().expect("QCOW2_CRASH_SEED must be an unsigned integer"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    };
    eprintln!("qcow2 crash test: seed {seed}; replay with QCOW2_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = TempDir::new("crash");
    let base = dir.join("base.qcow2");
    let top = dir.join("top.qcow2");
    Qcow2Image::create(&base, &CreateOptions { virtual_size: Some(SIZE), cluster_size: 512, backing: None }).unwrap();
    let mut chain = Chain::open(&base, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
    chain.write(0, &vec![0x5a; 4 << 20]).unwrap();
    chain.close().unwrap();
    let options = CreateOptions { backing: Some((base, Format::Qcow2)), cluster_size: 512, ..CreateOptions::default() };
    Qcow2Image::create(&top, &options).unwrap();

    for round in 0..4 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child_writer", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, &top)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200 + rng.below(800)));
        child.kill().unwrap();
        child.wait().unwrap();

        check_allows_only_leaks(&top);
        let mut chain = Chain::open(&top, &OpenOptions { writable: true, ..OpenOptions::default() })
            .unwrap_or_else(|error| panic!("seed {seed} round {round}: reopening failed: {error}"));
        let mut buffer = vec![0u8; 1 << 20];
        for offset in (0..SIZE).step_by(1 << 20) {
            chain.read(offset, &mut buffer).unwrap_or_else(|error| panic!("seed {seed} round {round}: {error}"));
        }
        chain.write(12345, &[7; 3000]).unwrap();
        chain.close().unwrap();
        check_allows_only_leaks(&top);
    }
}
