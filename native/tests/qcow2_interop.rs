//! Interoperability with QEMU: images that `qemu-img` and `qemu-io` write
//! read identically through our engine, and images we write pass
//! `qemu-img check`, `qemu-img info --backing-chain` and `qemu-io`.

mod qcow2_support;

use std::path::Path;

use layerdisk_native::qcow2::{Chain, CreateOptions, Format, OpenOptions, Qcow2Image};
use qcow2_support::*;

fn qemu_io(image: &Path, commands: &[&str]) {
    let mut args = vec!["-f", "qcow2"];
    for command in commands {
        args.push("-c");
        args.push(command);
    }
    args.push(path_str(image));
    let output = run_ok("qemu-io", &args);
    assert!(!output.contains("Pattern verification failed"), "qemu-io {commands:?}:\n{output}");
}

/// Reads the whole chain through our engine and compares it with what
/// `qemu-img convert -O raw` produces.
fn assert_reads_like_qemu(top: &Path, dir: &TempDir) {
    let expected_path = dir.join("expected.raw");
    run_ok("qemu-img", &["convert", "-f", "qcow2", "-O", "raw", path_str(top), path_str(&expected_path)]);
    let expected = std::fs::read(&expected_path).unwrap();

    let mut chain = Chain::open(top, &OpenOptions::default()).unwrap();
    let mut actual = vec![0u8; chain.virtual_size() as usize];
    chain.read(0, &mut actual).unwrap();
    assert_eq!(actual.len(), expected.len());
    if let Some(first) = actual.iter().zip(&expected).position(|(a, b)| a != b) {
        panic!("byte {first} of {} reads {:#x}, QEMU reads {:#x}", top.display(), actual[first], expected[first]);
    }
}

#[test]
fn qemu_chain_with_v2_base_reads_identically() {
    let dir = TempDir::new("qemu-v2");
    let base = dir.join("base.qcow2");
    let mid = dir.join("mid.qcow2");
    let top = dir.join("top.qcow2");

    run_ok("qemu-img", &["create", "-q", "-f", "qcow2", "-o", "compat=0.10", path_str(&base), "16M"]);
    qemu_io(
        &base,
        &["write -P 0xaa 0 1M", "write -P 0xbb 3M 100k", "write -z 5M 64k", "write -P 0x11 8M 64k", "discard 8M 64k"],
    );

    run_ok(
        "qemu-img",
        &["create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "base.qcow2", "-F", "qcow2", path_str(&mid), "16M"],
    );
    qemu_io(&mid, &["write -P 0xcc 700k 3k", "write -z 0 64k", "write -P 0xdd 3100k 10k"]);

    run_ok(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-o",
            "cluster_size=4096",
            "-b",
            "mid.qcow2",
            "-F",
            "qcow2",
            path_str(&top),
            "20M",
        ],
    );
    qemu_io(&top, &["write -z 3M 8k", "discard 700k 4k", "write -P 0xee 15M 1M", "write -P 0x42 16M 64k"]);

    assert_reads_like_qemu(&top, &dir);
    assert_reads_like_qemu(&mid, &dir);
    assert_reads_like_qemu(&base, &dir);
}

#[test]
fn qemu_v3_zero_discard_chain_reads() {
    let dir = TempDir::new("qemu-v3");
    let base = dir.join("base.raw");
    let mid = dir.join("mid.qcow2");
    let top = dir.join("top.qcow2");

    std::fs::write(&base, vec![0x77u8; 3 << 20]).unwrap();
    run_ok(
        "qemu-img",
        &["create", "-q", "-f", "qcow2", "-o", "cluster_size=512", "-b", "base.raw", "-F", "raw", path_str(&mid), "4M"],
    );
    qemu_io(&mid, &["write -P 0x01 1000 5000", "write -z 64k 64k", "discard 128k 64k", "write -z 200001 3"]);

    run_ok("qemu-img", &["create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", path_str(&top)]);
    qemu_io(&top, &["write -P 0x02 0 4k", "write -z 1M 64k", "write -P 0x03 2M 100k", "discard 2M 64k"]);

    assert_reads_like_qemu(&top, &dir);
    qemu_io(&top, &["read -P 0x02 0 4k", "read -P 0 1M 64k", "read -P 0x77 1536k 64k", "read -P 0 3M 1M"]);
}

fn create_our_chain(dir: &TempDir) -> std::path::PathBuf {
    let base = dir.join("base.qcow2");
    let top = dir.join("top.qcow2");
    let options = CreateOptions { virtual_size: Some(32 << 20), ..CreateOptions::default() };
    Qcow2Image::create(&base, &options).unwrap();
    let mut chain = Chain::open(&base, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
    chain.write(0, &vec![0x5au8; 1 << 20]).unwrap();
    chain.write(5 << 20, &vec![0x6bu8; 70_000]).unwrap();
    chain.close().unwrap();

    let options =
        CreateOptions { backing: Some((base, Format::Qcow2)), cluster_size: 4096, ..CreateOptions::default() };
    Qcow2Image::create(&top, &options).unwrap();
    let mut chain = Chain::open(&top, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
    chain.write(4096 + 17, &[0x7c; 300]).unwrap();
    chain.write_zeroes(64 << 10, 128 << 10).unwrap();
    chain.close().unwrap();
    top
}

#[test]
fn our_chain_passes_qemu_info_without_probing() {
    let dir = TempDir::new("ours-info");
    let top = create_our_chain(&dir);
    let info = run_ok("qemu-img", &["info", "--backing-chain", "--output=json", path_str(&top)]);

    // Two images, both qcow2, and the overlay records its backing format.
    assert_eq!(info.matches("\"format\": \"qcow2\"").count(), 2, "{info}");
    assert!(info.contains("\"backing-filename-format\": \"qcow2\""), "{info}");
    assert!(info.contains("\"backing-filename\": \"base.qcow2\""), "{info}");
    assert!(info.contains("\"cluster-size\": 4096"), "{info}");
    assert!(info.contains("\"compat\": \"1.1\""), "{info}");
    assert_check_clean(&top);
    assert_check_clean(&dir.join("base.qcow2"));
}

#[test]
fn our_chain_takes_qemu_io_reads_and_writes() {
    let dir = TempDir::new("ours-io");
    let top = create_our_chain(&dir);
    qemu_io(&top, &["read -P 0x5a 0 4096", "read -P 0x7c 4113 300", "read -P 0 64k 128k", "read -P 0x6b 5M 70000"]);

    qemu_io(&top, &["write -P 0x99 10M 100k", "write -z 0 4k", "discard 5M 4k"]);
    assert_check_clean(&top);
    assert_reads_like_qemu(&top, &dir);

    // And we keep writing after QEMU did.
    let mut chain = Chain::open(&top, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
    chain.write(10 << 20, &[1, 2, 3]).unwrap();
    chain.close().unwrap();
    assert_check_clean(&top);
    assert_reads_like_qemu(&top, &dir);
}

#[test]
fn we_write_into_qemu_made_images() {
    let dir = TempDir::new("write-qemu");
    let base = dir.join("base.qcow2");
    let top = dir.join("top.qcow2");
    run_ok("qemu-img", &["create", "-q", "-f", "qcow2", path_str(&base), "8M"]);
    qemu_io(&base, &["write -P 0x10 0 2M"]);
    run_ok(
        "qemu-img",
        &["create", "-q", "-f", "qcow2", "-o", "cluster_size=1024", "-b", "base.qcow2", "-F", "qcow2", path_str(&top)],
    );
    qemu_io(&top, &["write -P 0x20 1M 10k", "write -z 1536k 4k"]);

    let mut chain = Chain::open(&top, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
    chain.write(1_000_000, &vec![0x30; 50_000]).unwrap();
    chain.write_zeroes(1536 << 10, 2048).unwrap();
    chain.write(7 << 20, &vec![0x40; 9000]).unwrap();
    chain.close().unwrap();

    assert_check_clean(&top);
    qemu_io(&top, &["read -P 0x30 1000000 50000", "read -P 0 1536k 4k", "read -P 0x40 7M 9000", "read -P 0x10 0 900k"]);
    assert_reads_like_qemu(&top, &dir);
}

#[test]
fn identical_write_sequences_give_identical_files() {
    let dir = TempDir::new("determinism");
    let mut digests = Vec::new();
    for name in ["a", "b"] {
        let sub = dir.join(name);
        std::fs::create_dir(&sub).unwrap();
        let base = sub.join("base.qcow2");
        let top = sub.join("top.qcow2");
        Qcow2Image::create(&base, &CreateOptions { virtual_size: Some(16 << 20), cluster_size: 2048, backing: None })
            .unwrap();
        Qcow2Image::create(
            &top,
            &CreateOptions { backing: Some((base.clone(), Format::Qcow2)), ..CreateOptions::default() },
        )
        .unwrap();
        let mut rng = Rng::new(42);
        for image in [&base, &top] {
            let mut chain = Chain::open(image, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
            for _ in 0..400 {
                let offset = rng.below(16 << 20);
                let length = 1 + rng.below((16 << 20) - offset).min(20_000);
                if rng.below(3) == 0 {
                    chain.write_zeroes(offset, length).unwrap();
                } else {
                    let mut data = vec![0u8; length as usize];
                    rng.fill(&mut data);
                    chain.write(offset, &data).unwrap();
                }
            }
            chain.close().unwrap();
        }
        digests.push((sha256(&base), sha256(&top)));
    }
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn our_overlay_on_raw_base_passes_qemu() {
    let dir = TempDir::new("ours-raw-base");
    let base = dir.join("base.raw");
    let top = dir.join("top.qcow2");
    std::fs::write(&base, vec![0x3cu8; 3 << 20]).unwrap();
    let options = CreateOptions { backing: Some((base.clone(), Format::Raw)), ..CreateOptions::default() };
    Qcow2Image::create(&top, &options).unwrap();
    let mut chain = Chain::open(&top, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
    chain.write(1000, &[0x4d; 5000]).unwrap();
    chain.write_zeroes(1 << 20, 64 << 10).unwrap();
    chain.close().unwrap();

    let info = run_ok("qemu-img", &["info", "--backing-chain", "--output=json", path_str(&top)]);
    assert!(info.contains("\"backing-filename-format\": \"raw\""), "{info}");
    assert!(info.contains("\"format\": \"raw\""), "{info}");
    assert!(info.contains("\"virtual-size\": 3145728"), "{info}");
    assert_check_clean(&top);
    qemu_io(&top, &["read -P 0x3c 0 1000", "read -P 0x4d 1000 5000", "read -P 0 1M 64k", "read -P 0x3c 2M 64k"]);
    assert_reads_like_qemu(&top, &dir);
}

#[test]
fn preallocated_qemu_images_read_and_write() {
    for preallocation in ["metadata", "falloc", "full"] {
        let dir = TempDir::new("prealloc");
        let path = dir.join("a.qcow2");
        let option = format!("preallocation={preallocation},cluster_size=4096,lazy_refcounts=on");
        run_ok("qemu-img", &["create", "-q", "-f", "qcow2", "-o", &option, path_str(&path), "4M"]);
        qemu_io(&path, &["write -P 0x61 100k 10k", "write -z 1M 64k"]);
        assert_reads_like_qemu(&path, &dir);

        // Partial and whole-cluster writes into preallocated clusters reuse them.
        let mut chain = Chain::open(&path, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
        chain.write(2 << 20, &[0x62; 100]).unwrap();
        chain.write(3 << 20, &[0x63; 8192]).unwrap();
        chain.write_zeroes(100 << 10, 4096).unwrap();
        chain.close().unwrap();

        assert_check_clean(&path);
        qemu_io(&path, &["read -P 0x62 2M 100", "read -P 0 2097252 3996", "read -P 0x63 3M 8k", "read -P 0 100k 4k"]);
        assert_reads_like_qemu(&path, &dir);
    }
}

#[test]
fn our_overlay_on_qemu_chain_passes_qemu() {
    let dir = TempDir::new("ours-on-qemu");
    let base = dir.join("base.qcow2");
    let top = dir.join("top.qcow2");
    run_ok("qemu-img", &["create", "-q", "-f", "qcow2", "-o", "compat=0.10,cluster_size=8192", path_str(&base), "6M"]);
    qemu_io(&base, &["write -P 0x71 0 3M"]);

    let options = CreateOptions { backing: Some((base.clone(), Format::Qcow2)), ..CreateOptions::default() };
    Qcow2Image::create(&top, &options).unwrap();
    let mut chain = Chain::open(&top, &OpenOptions { writable: true, ..OpenOptions::default() }).unwrap();
    chain.write(12_345, &[0x72; 70_000]).unwrap();
    chain.write_zeroes(1 << 20, 128 << 10).unwrap();
    chain.close().unwrap();

    assert_check_clean(&top);
    let info = run_ok("qemu-img", &["info", "--backing-chain", "--output=json", path_str(&top)]);
    assert!(info.contains("\"backing-filename-format\": \"qcow2\""), "{info}");
    assert!(info.contains("\"compat\": \"0.10\""), "{info}");
    qemu_io(&top, &["read -P 0x71 0 12345", "read -P 0x72 12345 70000", "read -P 0 1M 128k", "read -P 0x71 2M 1M"]);
    assert_reads_like_qemu(&top, &dir);
}
