//! A randomized model test: 8 layers of 1,250 random operations each,
//! applied to the writer and to an in-memory model of the tree. After each
//! layer, e2fsck -fn must pass and the tree must match the model, both as
//! the writer reads it and as debugfs reads it.
//!
//! The seed is printed; replay a failure with LAYERDISK_MODEL_SEED=<seed>.

mod ext4_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use ext4_common::*;
use layerdisk_native::block::RawFile;
use layerdisk_native::ext4::{Attrs, Ext4Error, Filesystem, OpenOptions, SpecialKind, Timestamp};

const LAYERS: usize = 8;
const OPS_PER_LAYER: usize = 1250;

/// xorshift64*: small, fast and reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// File content, regenerated from a seed instead of stored.
#[derive(Clone, Copy, Debug)]
struct Content {
    seed: u64,
    len: u64,
    /// Bytes of hole after the first 3000 bytes, when non-zero.
    hole: u64,
}

impl Content {
    fn size(&self) -> u64 {
        self.len + self.hole
    }
    fn data(&self) -> (Vec<u8>, Vec<u8>) {
        let mut rng = Rng(self.seed | 1);
        let bytes: Vec<u8> = (0..self.len).map(|_| (rng.next() >> 56) as u8).collect();
        let split = if self.hole > 0 { 3000.min(bytes.len()) } else { bytes.len() };
        (bytes[..split].to_vec(), bytes[split..].to_vec())
    }
    fn full(&self) -> Vec<u8> {
        let (head, tail) = self.data();
        let mut out = head;
        out.resize(out.len() + self.hole as usize, 0);
        out.extend_from_slice(&tail);
        out
    }
}

#[derive(Clone, Debug)]
struct Meta {
    mode: u16,
    uid: u32,
    gid: u32,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

#[derive(Clone, Debug)]
enum Node {
    Dir(Meta),
    /// A name of file `id` in `Model::files`.
    File(u32),
    Symlink(Vec<u8>),
    Fifo(Meta),
    Char(Meta, u32, u32),
}

#[derive(Default)]
struct Model {
    nodes: BTreeMap<Vec<u8>, Node>,
    files: BTreeMap<u32, (Meta, Content)>,
    next_id: u32,
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        name.to_vec()
    } else {
        [parent, b"/", name].concat()
    }
}

fn parent_of(path: &[u8]) -> &[u8] {
    path.iter().rposition(|&b| b == b'/').map_or(&[][..], |i| &path[..i])
}

impl Model {
    fn remove(&mut self, path: &[u8]) {
        let prefix = [path, b"/"].concat();
        let doomed: Vec<Vec<u8>> = self.nodes.keys().filter(|k| k.as_slice() == path || k.starts_with(&prefix)).cloned().collect();
        for key in doomed {
            if let Some(Node::File(id)) = self.nodes.remove(&key) {
                if !self.nodes.values().any(|n| matches!(n, Node::File(other) if *other == id)) {
                    self.files.remove(&id);
                }
            }
        }
    }

    fn links(&self, id: u32) -> u16 {
        self.nodes.values().filter(|n| matches!(n, Node::File(other) if *other == id)).count() as u16
    }

    fn subdirs(&self, dir: &[u8]) -> u16 {
        self.nodes.iter().filter(|(k, n)| matches!(n, Node::Dir(_)) && parent_of(k) == dir).count() as u16
    }

    fn dirs(&self) -> Vec<Vec<u8>> {
        let mut dirs = vec![Vec::new()];
        dirs.extend(self.nodes.iter().filter(|(_, n)| matches!(n, Node::Dir(_))).map(|(k, _)| k.clone()));
        dirs
    }
}

fn random_attrs(rng: &mut Rng) -> Attrs {
    let time = Timestamp { seconds: rng.below(1 << 34) as i64 - (1 << 31), nanoseconds: rng.below(1_000_000_000) as u32 };
    Attrs { mode: (rng.below(0o7777) as u16) | 0o700, uid: rng.below(70_000) as u32, gid: rng.below(70_000) as u32, atime: time, mtime: time, ctime: time }
}

fn meta(attrs: &Attrs) -> Meta {
    Meta { mode: attrs.mode, uid: attrs.uid, gid: attrs.gid, xattrs: BTreeMap::new() }
}

fn pick<T: Clone>(rng: &mut Rng, items: &[T]) -> Option<T> {
    (!items.is_empty()).then(|| items[rng.below(items.len() as u64) as usize].clone())
}

/// Operations that failed because the filesystem was full.
static FULL: AtomicUsize = AtomicUsize::new(0);

/// Unwraps an operation's result. A full filesystem ends the step with the
/// model unchanged, since a failed operation changes nothing.
macro_rules! applied {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(Ext4Error::NoSpace { .. }) => {
                FULL.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(error) => panic!("{error}"),
        }
    };
}

/// Applies one random operation to both the filesystem and the model.
/// File sizes are multiplied by `scale`.
fn step(rng: &mut Rng, fs: &mut Filesystem, model: &mut Model, scale: u64) {
    let dirs = model.dirs();
    // Half the operations go to the root, so it grows into an htree.
    let parent = if rng.below(2) == 0 { Vec::new() } else { pick(rng, &dirs).unwrap() };
    // Long names fill directory blocks, so directories turn into htrees.
    let k = rng.below(64);
    let name = if rng.below(3) == 0 { format!("n{k}-{}", "p".repeat(150 + k as usize)) } else { format!("n{k}") }.into_bytes();
    let path = join(&parent, &name);
    let attrs = random_attrs(rng);
    let existing: Vec<Vec<u8>> = model.nodes.keys().cloned().collect();

    match rng.below(100) {
        0..=29 => {
            let len = scale * if rng.below(20) == 0 { 100_000 + rng.below(200_000) } else { rng.below(9000) };
            let hole = if rng.below(8) == 0 { 4096 * rng.below(40) + rng.below(5000) } else { 0 };
            let content = Content { seed: rng.next(), len, hole };
            let (head, tail) = content.data();
            applied!(fs.begin_file(&path, &attrs));
            applied!(fs.write_file(&head));
            applied!(fs.skip_file(hole));
            applied!(fs.write_file(&tail));
            applied!(fs.finish_file());
            model.remove(&path);
            model.next_id += 1;
            model.files.insert(model.next_id, (meta(&attrs), content));
            model.nodes.insert(path, Node::File(model.next_id));
        }
        30..=44 => {
            applied!(fs.mkdir(&path, &attrs));
            match model.nodes.get_mut(&path) {
                Some(Node::Dir(m)) => {
                    let xattrs = std::mem::take(&mut m.xattrs);
                    *m = Meta { xattrs, ..meta(&attrs) };
                }
                _ => {
                    model.remove(&path);
                    model.nodes.insert(path, Node::Dir(meta(&attrs)));
                }
            }
        }
        45..=51 => {
            let len = if rng.below(3) == 0 { 60 + rng.below(4036) } else { 1 + rng.below(59) };
            let target: Vec<u8> = (0..len).map(|i| b"abcdefgh/"[(i % 9) as usize]).collect();
            applied!(fs.symlink(&path, &target, &attrs));
            model.remove(&path);
            model.nodes.insert(path, Node::Symlink(target));
        }
        52..=59 => {
            let files: Vec<Vec<u8>> = model.nodes.iter().filter(|(_, n)| matches!(n, Node::File(_))).map(|(k, _)| k.clone()).collect();
            let Some(existing) = pick(rng, &files) else { return };
            let Node::File(id) = model.nodes[&existing] else { unreachable!() };
            if existing.starts_with(&[path.as_slice(), b"/"].concat()) {
                return;
            }
            applied!(fs.link(&path, &existing));
            if !matches!(model.nodes.get(&path), Some(Node::File(other)) if *other == id) {
                model.remove(&path);
                model.nodes.insert(path, Node::File(id));
            }
        }
        60..=64 => {
            let (kind, node) = if rng.below(2) == 0 {
                (SpecialKind::Fifo, Node::Fifo(meta(&attrs)))
            } else {
                let (major, minor) = (rng.below(4096) as u32, rng.below(1 << 20) as u32);
                (SpecialKind::CharDevice { major, minor }, Node::Char(meta(&attrs), major, minor))
            };
            applied!(fs.mknod(&path, kind, &attrs));
            model.remove(&path);
            model.nodes.insert(path, node);
        }
        65..=74 => {
            let Some(target) = pick(rng, &existing) else { return };
            applied!(fs.set_attrs(&target, &attrs));
            let m = match model.nodes.get_mut(&target).unwrap() {
                Node::Dir(m) | Node::Fifo(m) | Node::Char(m, _, _) => m,
                Node::File(id) => &mut model.files.get_mut(id).unwrap().0,
                Node::Symlink(_) => return,
            };
            m.mode = attrs.mode;
            m.uid = attrs.uid;
            m.gid = attrs.gid;
        }
        75..=84 => {
            let Some(target) = pick(rng, &existing) else { return };
            let key = format!("user.{}", (b'a' + rng.below(4) as u8) as char).into_bytes();
            let len = if rng.below(4) == 0 { 300 + rng.below(400) } else { rng.below(40) };
            let value: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
            let m = match model.nodes.get_mut(&target).unwrap() {
                Node::Dir(m) => m,
                Node::File(id) => &mut model.files.get_mut(id).unwrap().0,
                _ => return,
            };
            if rng.below(3) == 0 {
                let existed = applied!(fs.remove_xattr(&target, &key));
                assert_eq!(existed, m.xattrs.remove(&key).is_some());
            } else {
                applied!(fs.set_xattr(&target, &key, &value));
                m.xattrs.insert(key, value);
            }
        }
        85..=91 => {
            let Some(target) = pick(rng, &existing) else { return };
            applied!(fs.remove(&target));
            model.remove(&target);
        }
        92..=93 if rng.below(4) == 0 => {
            let Some(dir) = pick(rng, &dirs[1..]) else { return };
            applied!(fs.clear_dir(&dir));
            let children: Vec<Vec<u8>> = model.nodes.keys().filter(|k| parent_of(k) == dir.as_slice()).cloned().collect();
            for child in children {
                model.remove(&child);
            }
        }
        92..=95 => {}
        _ => {
            // Invalid requests must fail and change nothing.
            let long = join(&parent, &[b'L'; 256]);
            assert!(matches!(fs.mkdir(&long, &attrs), Err(Ext4Error::NameTooLong { .. })));
            let missing = join(&parent, b"missing-target");
            assert!(matches!(fs.link(&path, &missing), Err(Ext4Error::NotFound { .. })));
        }
    }
}

fn file_type_name(node: &Node) -> &'static str {
    match node {
        Node::Dir(_) => "directory",
        Node::File(_) => "regular",
        Node::Symlink(_) => "symlink",
        Node::Fifo(_) => "FIFO",
        Node::Char(..) => "character special",
    }
}

/// Checks the tree as the writer reads it back.
fn check_with_reader(fs: &mut Filesystem, model: &Model) {
    for (path, node) in &model.nodes {
        let shown = String::from_utf8_lossy(path);
        let stat = fs.lstat(path).unwrap().unwrap_or_else(|| panic!("{shown} is missing"));
        match node {
            Node::Dir(m) => {
                assert_eq!((stat.mode & 0o7777, stat.uid, stat.gid), (m.mode, m.uid, m.gid), "{shown}");
                assert_eq!(stat.links, 2 + model.subdirs(path), "{shown} link count");
                let names: BTreeSet<Vec<u8>> = fs.read_dir(path).unwrap().into_iter().map(|e| e.name).collect();
                let expected: BTreeSet<Vec<u8>> =
                    model.nodes.keys().filter(|k| parent_of(k) == path.as_slice()).map(|k| k[k.len() - k.iter().rev().position(|&b| b == b'/').unwrap_or(k.len())..].to_vec()).collect();
                assert_eq!(names, expected, "{shown} listing");
                let xattrs: BTreeMap<Vec<u8>, Vec<u8>> = fs.xattrs(path).unwrap().into_iter().collect();
                assert_eq!(xattrs, m.xattrs, "{shown} xattrs");
            }
            Node::File(id) => {
                let (m, content) = &model.files[id];
                assert_eq!((stat.mode & 0o7777, stat.uid, stat.gid, stat.size), (m.mode, m.uid, m.gid, content.size()), "{shown}");
                assert_eq!(stat.links, model.links(*id), "{shown} link count");
                let data = fs.read_file(path).unwrap();
                let expected = content.full();
                if data != expected {
                    let at = data.iter().zip(&expected).position(|(a, b)| a != b);
                    panic!("{shown} content differs at {at:?} ({content:?}, read {} bytes)", data.len());
                }
                let xattrs: BTreeMap<Vec<u8>, Vec<u8>> = fs.xattrs(path).unwrap().into_iter().collect();
                assert_eq!(xattrs, m.xattrs, "{shown} xattrs");
            }
            Node::Symlink(target) => assert_eq!(stat.target.as_ref(), Some(target), "{shown}"),
            Node::Fifo(m) => assert_eq!((stat.mode & 0o7777, stat.uid, stat.gid), (m.mode, m.uid, m.gid), "{shown}"),
            Node::Char(m, major, minor) => {
                assert_eq!((stat.mode & 0o7777, stat.uid, stat.gid), (m.mode, m.uid, m.gid), "{shown}");
                assert_eq!(stat.device, Some((*major, *minor)), "{shown}");
            }
        }
    }
}

/// Returns the value after `label` in debugfs `stat` output.
fn field<'a>(text: &'a str, label: &str) -> &'a str {
    let at = text.find(label).unwrap_or_else(|| panic!("no {label} in {text}")) + label.len();
    text[at..].split_whitespace().next().unwrap()
}

/// Checks type, mode, owner, size, links and xattrs with debugfs, and
/// file content and symlink targets through `rdump`.
fn check_with_debugfs(image: &Path, model: &Model, dump: &Path) -> usize {
    let root = debugfs(image, "stat /");
    let mut htrees = (u32::from_str_radix(field(&root, "Flags: ").trim_start_matches("0x"), 16).unwrap() & 0x1000 != 0) as usize;
    let commands: String = model.nodes.keys().map(|p| format!("stat \"/{}\"\nea_list \"/{}\"\n", String::from_utf8_lossy(p), String::from_utf8_lossy(p))).collect();
    let script = dump.with_extension("cmds");
    std::fs::write(&script, commands).unwrap();
    let output = std::process::Command::new("debugfs").arg("-f").arg(&script).arg(image).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut sections = text.split("debugfs: ").skip(1);

    for (path, node) in &model.nodes {
        let shown = String::from_utf8_lossy(path);
        let stat = sections.next().unwrap();
        let ea = sections.next().unwrap();
        let kind = field(stat, "Type: ");
        let flags = u32::from_str_radix(field(stat, "Flags: ").trim_start_matches("0x"), 16).unwrap();
        htrees += (flags & 0x1000 != 0) as usize;
        assert!(file_type_name(node).starts_with(kind), "{shown}: debugfs type {kind}");
        let mode = u16::from_str_radix(field(stat, "Mode: "), 8).unwrap();
        let user: u32 = field(stat, "User: ").parse().unwrap_or_else(|_| field(stat, "User: ").parse::<i64>().unwrap() as u32);
        let group: u32 = field(stat, "Group: ").parse().unwrap();
        let links: u16 = field(stat, "Links: ").parse().unwrap();
        let size: u64 = field(stat, "Size: ").parse().unwrap();
        let (m, expect_links, expect_size) = match node {
            Node::Dir(m) => (Some(m), 2 + model.subdirs(path), None),
            Node::File(id) => (Some(&model.files[id].0), model.links(*id), Some(model.files[id].1.size())),
            Node::Symlink(target) => (None, 1, Some(target.len() as u64)),
            Node::Fifo(m) | Node::Char(m, _, _) => (Some(m), 1, Some(0)),
        };
        assert_eq!(links, expect_links, "{shown}: debugfs link count");
        if let Some(expected) = expect_size {
            assert_eq!(size, expected, "{shown}: debugfs size");
        }
        if let Some(m) = m {
            assert_eq!((mode, user, group), (m.mode, m.uid, m.gid), "{shown}: debugfs mode and owner");
            let names: BTreeSet<String> = ea.lines().filter_map(|l| l.trim_start().split(" (").next()).filter(|n| n.starts_with("user.")).map(str::to_string).collect();
            let expected: BTreeSet<String> = m.xattrs.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
            assert_eq!(names, expected, "{shown}: debugfs xattr names");
        }
    }

    let _ = std::fs::remove_dir_all(dump);
    std::fs::create_dir_all(dump).unwrap();
    check_xattr_values(image, model, dump);
    let status = std::process::Command::new("debugfs").arg("-R").arg(format!("rdump / {}", dump.display())).arg(image).output().unwrap();
    assert!(status.status.success());
    for (path, node) in &model.nodes {
        let host = dump.join(String::from_utf8_lossy(path).as_ref());
        match node {
            Node::File(id) => assert!(std::fs::read(&host).unwrap() == model.files[id].1.full(), "{host:?} dumped content differs"),
            Node::Symlink(target) => assert_eq!(std::fs::read_link(&host).unwrap().as_os_str().as_encoded_bytes(), target.as_slice()),
            _ => {}
        }
    }
    htrees
}

/// Checks every xattr value with `debugfs ea_get -f`, which writes the raw
/// value to a file.
fn check_xattr_values(image: &Path, model: &Model, dump: &Path) {
    let mut commands = String::new();
    let mut expected = Vec::new();
    for (path, node) in &model.nodes {
        let m = match node {
            Node::Dir(m) => m,
            Node::File(id) => &model.files[id].0,
            _ => continue,
        };
        for (name, value) in &m.xattrs {
            let out = dump.join(format!("xattr-{}", expected.len()));
            let shown = String::from_utf8_lossy(path);
            commands.push_str(&format!("ea_get -f {} \"/{shown}\" {}\n", out.display(), String::from_utf8_lossy(name)));
            expected.push((out, value.clone(), format!("{shown} {}", String::from_utf8_lossy(name))));
        }
    }
    let script = dump.join("xattrs.cmds");
    std::fs::write(&script, commands).unwrap();
    let output = std::process::Command::new("debugfs").arg("-f").arg(&script).arg(image).output().unwrap();
    assert!(output.status.success());
    for (out, value, what) in expected {
        let read = std::fs::read(&out).unwrap_or_default();
        assert!(read == value, "{what}: debugfs read {} bytes, expected {}", read.len(), value.len());
    }
}

#[test]
fn random_layers_match_model() {
    run_model("model", 1 << 30, 1, 0x5EED_1234_ABCD);
}

/// Runs the model with 8 times larger files on a 16 MiB filesystem that
/// fills up, so operations fail for lack of space and must leave nothing
/// behind.
#[test]
fn full_filesystem_layers_match_model() {
    run_model("model-full", 16 << 20, 8, 0xF011);
    assert!(FULL.load(Ordering::Relaxed) > 0, "the filesystem never filled up");
}

fn run_model(name: &str, size: u64, scale: u64, default_seed: u64) {
    let seed: u64 = std::env::var("LAYERDISK_MODEL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default_seed);
    eprintln!("{name} seed: {seed} (replay with LAYERDISK_MODEL_SEED={seed})");
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let scratch = Scratch::new(name);
    let image = scratch.path("fs.img");
    drop(format_file(&image, size));
    let mut model = Model::default();

    for layer in 0..LAYERS {
        let (device, written) = Recording::new(RawFile::open(&image, true).unwrap());
        let mut fs = Filesystem::open(Box::new(device), OpenOptions::default()).unwrap();
        for _ in 0..OPS_PER_LAYER {
            step(&mut rng, &mut fs, &mut model, scale);
        }
        fs.commit().unwrap();
        check_with_reader(&mut fs, &model);
        drop(fs);
        let clusters = clusters(&written.lock().unwrap(), 64 * 1024);
        assert_fsck_clean(&image);
        let htrees = check_with_debugfs(&image, &model, &scratch.path("dump"));
        let full = FULL.load(Ordering::Relaxed);
        eprintln!("layer {layer}: {} entries, {htrees} htree directories, {clusters} clusters written, {full} operations failed for space so far", model.nodes.len());
    }
}
