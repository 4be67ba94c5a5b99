//! One qcow2 file: opening it (the checks live in `checks`), creating it,
//! and mapping guest clusters through the L1 and L2 tables.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::backing::{self, Format};
use super::cache::Cache;
use super::checks::*;
use super::entry::{EntryError, L1Entry, L2Entry};
use super::error::{Qcow2Error, Result};
use super::extension::{self, Extensions};
use super::header::*;

/// Default cluster size of new images: 64 KiB, as QEMU's.
pub const DEFAULT_CLUSTER_SIZE: u64 = 64 * 1024;
/// Maximum L1 table size in bytes, QEMU's implementation limit.
pub const MAX_L1_BYTES: u64 = 32 * 1024 * 1024;
/// Maximum refcount table size in bytes, QEMU's implementation limit.
pub const MAX_REFCOUNT_TABLE_BYTES: u64 = 8 * 1024 * 1024;
/// L2 tables held in memory per image.
pub const L2_CACHE_TABLES: usize = 64;
/// Refcount blocks held in memory per writable image.
pub const REFCOUNT_CACHE_BLOCKS: usize = 16;

/// Options of [`Qcow2Image::create`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    /// Virtual size in bytes, a multiple of 512. `None` takes the size of
    /// the backing file.
    pub virtual_size: Option<u64>,
    /// Cluster size in bytes: a power of two from 512 B to 2 MiB.
    pub cluster_size: u64,
    /// Backing file and its format; the image records the path relative to
    /// its own directory.
    pub backing: Option<(PathBuf, Format)>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions { virtual_size: None, cluster_size: DEFAULT_CLUSTER_SIZE, backing: None }
    }
}

/// Refcount state of a writable image.
pub(super) struct Refcounts {
    /// Refcount table entries (raw, host byte order).
    pub table: Vec<u64>,
    pub table_dirty: bool,
    /// The table moved to new clusters, so the header must be rewritten.
    pub table_moved: bool,
    /// Refcount blocks as raw on-disk bytes, keyed by host offset.
    pub blocks: Cache<Vec<u8>>,
    /// Host offset where the next cluster is allocated. Allocation only
    /// appends, which keeps it deterministic.
    pub next_free: u64,
    /// Clusters to release once the header no longer points at them.
    pub pending_free: Vec<u64>,
    /// The refcount table is being moved. Until the new table's own
    /// refcounts are set, the block cache may grow past its bound instead
    /// of flushing, so no flush writes the new table half counted.
    pub growing: bool,
}

pub struct Qcow2Image {
    pub(super) path: PathBuf,
    pub(super) file: File,
    pub(super) header: Header,
    pub(super) extensions: Extensions,
    pub(super) backing_name: Option<String>,
    /// Active L1 table entries (raw, host byte order).
    pub(super) l1: Vec<u64>,
    pub(super) l1_dirty: bool,
    /// L2 tables (raw entries, host byte order), keyed by host offset.
    pub(super) l2_cache: Cache<Vec<u64>>,
    /// `Some` when the image is open for writing.
    pub(super) refcounts: Option<Refcounts>,
    pub(super) header_dirty: bool,
    /// Length of the file, including clusters allocated but not yet written.
    pub(super) file_len: u64,
    /// Something was written since the last synced flush.
    pub(super) unsynced: bool,
}

/// Turns an entry decoding error into a corruption error at `offset`.
pub(super) fn entry_error(file: &Path, offset: u64, field: &'static str, raw: u64, error: EntryError) -> Qcow2Error {
    let expected = match error {
        EntryError::ReservedBits(mask) => format!("reserved bits {mask:#x} to be zero"),
        EntryError::Unaligned(_) => "an offset aligned to the cluster size".to_string(),
    };
    Qcow2Error::corrupt(file, offset, field, raw, expected)
}

pub(super) fn past_end(file: &Path, offset: u64, field: &'static str, value: u64, file_len: u64) -> Qcow2Error {
    Qcow2Error::corrupt(file, offset, field, value, format!("an offset inside the {file_len}-byte file"))
}

impl Qcow2Image {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn virtual_size(&self) -> u64 {
        self.header.size
    }

    pub fn cluster_size(&self) -> u64 {
        self.header.cluster_size()
    }

    pub fn version(&self) -> u32 {
        self.header.version
    }

    pub fn refcount_bits(&self) -> u64 {
        1 << self.header.refcount_order
    }

    pub fn backing_name(&self) -> Option<&str> {
        self.backing_name.as_deref()
    }

    /// Returns the backing format name recorded in the header extension.
    pub fn backing_format(&self) -> Option<&str> {
        self.extensions.backing_format.as_ref().map(|(name, _)| name.as_str())
    }

    pub fn is_writable(&self) -> bool {
        self.refcounts.is_some()
    }

    /// Number of L2 entries in one L2 table.
    pub(super) fn l2_entries(&self) -> u64 {
        self.cluster_size() / 8
    }

    /// Opens `path` and checks its header, extensions, L1 table and
    /// refcount table. Writing needs a version 3 image without snapshots.
    pub fn open(path: &Path, writable: bool) -> Result<Qcow2Image> {
        // Opening a FIFO would block until a writer appears.
        let metadata = std::fs::metadata(path).map_err(|error| Qcow2Error::io(path, None, error))?;
        if !metadata.is_file() {
            return Err(Qcow2Error::invalid(format!("{} is not a regular file", path.display())));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|error| Qcow2Error::io(path, None, error))?;
        lock(&file, path, writable)?;
        let file_len = file.metadata().map_err(|error| Qcow2Error::io(path, None, error))?.len();

        let mut first = vec![0u8; V3_HEADER_LENGTH as usize];
        read_padded(&file, path, 0, &mut first)?;
        let header = Header::decode(&first, path)?;

        // Extensions come first so that an error about an unknown feature
        // can give the name from the image's feature name table.
        let mut cluster = vec![0u8; header.cluster_size() as usize];
        read_padded(&file, path, 0, &mut cluster)?;
        let extensions = Extensions::decode(&cluster, header.header_length as usize, path)?;
        check_features(&header, &extensions, path)?;
        check_extensions(&extensions, path)?;
        let backing_name = decode_backing_name(&header, &cluster, file_len, path)?;

        check_tables(&header, file_len, path)?;
        let l1 = read_l1(&file, &header, file_len, path)?;
        let refcount_table = read_refcount_table(&file, &header, file_len, path)?;

        let refcounts = if writable {
            check_writable(&header, path)?;
            Some(Refcounts {
                table: refcount_table,
                table_dirty: false,
                table_moved: false,
                blocks: Cache::new(REFCOUNT_CACHE_BLOCKS),
                next_free: file_len.div_ceil(header.cluster_size()) * header.cluster_size(),
                pending_free: Vec::new(),
                growing: false,
            })
        } else {
            None
        };

        // Bits of unknown autoclear features must be cleared before writing.
        let header_dirty = writable && header.autoclear_features != 0;
        let mut image = Qcow2Image {
            path: path.to_path_buf(),
            file,
            header,
            extensions,
            backing_name,
            l1,
            l1_dirty: false,
            l2_cache: Cache::new(L2_CACHE_TABLES),
            refcounts,
            header_dirty,
            file_len,
            unsynced: false,
        };
        if header_dirty {
            image.header.autoclear_features = 0;
            image.unsynced = true;
        }
        Ok(image)
    }

    /// Creates a version 3 image at `path`, replacing any file there.
    ///
    /// Layout: the header cluster, one refcount table cluster, the first
    /// refcount block, then the L1 table. The allocator places them, so
    /// their refcounts are set like any other cluster's. The file is synced
    /// once at the end, because no other file refers to it before this returns.
    pub fn create(path: &Path, options: &CreateOptions) -> Result<()> {
        let cluster_size = options.cluster_size;
        check_cluster_size(cluster_size)?;
        let backing = match &options.backing {
            Some((backing_path, format)) => {
                if path.canonicalize().ok().is_some_and(|image| backing_path.canonicalize().ok() == Some(image)) {
                    let message = format!("{} cannot be its own backing file", path.display());
                    return Err(Qcow2Error::invalid(message));
                }
                Some((backing::relative_name(path, backing_path)?, *format))
            }
            None => None,
        };
        let virtual_size = match (options.virtual_size, &options.backing) {
            (Some(size), _) => size,
            (None, Some((backing_path, format))) => backing_size(backing_path, *format)?.div_ceil(512) * 512,
            (None, None) => {
                return Err(Qcow2Error::invalid("virtual_size is required for an image without a backing file"))
            }
        };
        if virtual_size % 512 != 0 {
            return Err(Qcow2Error::invalid(format!("virtual size {virtual_size} is not a multiple of 512 bytes")));
        }

        let cluster_bits = cluster_size.trailing_zeros();
        let l2_coverage = cluster_size * (cluster_size / 8);
        let l1_size = virtual_size.div_ceil(l2_coverage).max(1);
        if l1_size * 8 > MAX_L1_BYTES {
            return Err(Qcow2Error::invalid(format!(
                "virtual size {virtual_size} needs an L1 table over 32 MiB; use a larger cluster size"
            )));
        }

        let (extensions, cluster0) = layout_first_cluster(cluster_size, backing.as_ref())?;
        let header = Header {
            version: 3,
            backing_file_offset: 0,
            backing_file_size: 0,
            cluster_bits,
            size: virtual_size,
            crypt_method: CRYPT_NONE,
            l1_size: l1_size as u32,
            l1_table_offset: 0,
            refcount_table_offset: cluster_size,
            refcount_table_clusters: 1,
            nb_snapshots: 0,
            snapshots_offset: 0,
            incompatible_features: 0,
            compatible_features: 0,
            autoclear_features: 0,
            refcount_order: DEFAULT_REFCOUNT_ORDER,
            header_length: V3_HEADER_LENGTH,
        };
        let header =
            Header { backing_file_offset: cluster0.backing_offset, backing_file_size: cluster0.backing_size, ..header };

        // Lock before truncating, so an image that is open elsewhere survives.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|error| Qcow2Error::io(path, None, error))?;
        lock(&file, path, true)?;
        file.set_len(0).map_err(|error| Qcow2Error::io(path, None, error))?;
        let mut image = Qcow2Image {
            path: path.to_path_buf(),
            file,
            header,
            extensions,
            backing_name: backing.map(|(name, _)| name),
            l1: vec![0; l1_size as usize],
            l1_dirty: true,
            l2_cache: Cache::new(L2_CACHE_TABLES),
            refcounts: Some(Refcounts {
                table: vec![0; (cluster_size / 8) as usize],
                table_dirty: true,
                table_moved: false,
                blocks: Cache::new(REFCOUNT_CACHE_BLOCKS),
                next_free: 2 * cluster_size,
                pending_free: Vec::new(),
                growing: false,
            }),
            header_dirty: true,
            file_len: 0,
            unsynced: true,
        };

        image.set_refcount(0, 1)?;
        image.set_refcount(cluster_size, 1)?;
        let l1_clusters = (l1_size * 8).div_ceil(cluster_size);
        let l1_offset = image.reserve_clusters(l1_clusters);
        for index in 0..l1_clusters {
            image.set_refcount(l1_offset + index * cluster_size, 1)?;
        }
        image.header.l1_table_offset = l1_offset;

        let mut first = image.header.encode();
        first.extend_from_slice(&cluster0.rest);
        image.write_host(0, &first)?;
        image.write_metadata(false)?;
        image.file.sync_all().map_err(|error| Qcow2Error::io(path, None, error))?;
        image.unsynced = false;
        Ok(())
    }

    /// Reads `buf.len()` bytes at host `offset`; bytes past the end of the
    /// file read as zeros, as in QEMU.
    pub(super) fn read_host(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        read_padded(&self.file, &self.path, offset, buf)
    }

    pub(super) fn write_host(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.file.write_all_at(buf, offset).map_err(|error| Qcow2Error::io(&self.path, Some(offset), error))?;
        self.file_len = self.file_len.max(offset + buf.len() as u64);
        self.unsynced = true;
        Ok(())
    }

    /// Returns the mapping of the guest cluster that contains `guest_offset`.
    pub(super) fn l2_entry(&mut self, guest_offset: u64) -> Result<L2Entry> {
        let (l1_index, l2_index) = self.table_indexes(guest_offset);
        let Some(&l1_raw) = self.l1.get(l1_index) else { return Ok(L2Entry::Unallocated) };
        let l2_offset = l1_raw & super::entry::OFFSET_MASK;
        if l2_offset == 0 {
            return Ok(L2Entry::Unallocated);
        }

        self.load_l2(l2_offset)?;
        let raw = self.l2_cache.get_mut(l2_offset).expect("loaded above").value[l2_index];
        let entry_offset = l2_offset + l2_index as u64 * 8;
        let entry = L2Entry::decode(raw, self.cluster_size(), self.header.version)
            .map_err(|error| entry_error(&self.path, entry_offset, "L2 entry", raw, error))?;

        match entry {
            L2Entry::Compressed => {
                Err(Qcow2Error::unsupported(&self.path, entry_offset, "compressed cluster (L2 entry)", raw))
            }
            L2Entry::Data { host_offset, .. } | L2Entry::Zero { host_offset, .. } if host_offset >= self.file_len => {
                Err(past_end(&self.path, entry_offset, "L2 entry", raw, self.file_len))
            }
            _ => Ok(entry),
        }
    }

    /// Returns the L1 and L2 indexes of a guest offset.
    pub(super) fn table_indexes(&self, guest_offset: u64) -> (usize, usize) {
        let cluster_index = guest_offset >> self.header.cluster_bits;
        let l2_entries = self.l2_entries();
        ((cluster_index / l2_entries) as usize, (cluster_index % l2_entries) as usize)
    }

    /// Brings the L2 table at `l2_offset` into the cache.
    pub(super) fn load_l2(&mut self, l2_offset: u64) -> Result<()> {
        if self.l2_cache.contains(l2_offset) {
            return Ok(());
        }
        let mut bytes = vec![0u8; self.cluster_size() as usize];
        self.read_host(l2_offset, &mut bytes)?;
        let table = bytes.chunks_exact(8).map(|raw| u64::from_be_bytes(raw.try_into().expect("8 bytes"))).collect();
        self.make_room_for_l2()?;
        self.l2_cache.insert(l2_offset, table, false);
        Ok(())
    }

    /// Evicts the least recently used L2 table when the cache is full. A
    /// dirty victim is written with all other dirty metadata, in order.
    pub(super) fn make_room_for_l2(&mut self) -> Result<()> {
        if !self.l2_cache.is_full() {
            return Ok(());
        }
        let victim = self.l2_cache.oldest().expect("a full cache has entries");
        if self.l2_cache.get_mut(victim).is_some_and(|entry| entry.dirty) {
            self.write_metadata(false)?;
        }
        self.l2_cache.remove(victim);
        Ok(())
    }

    /// Points the guest cluster at `guest_offset` to `entry`, allocating
    /// its L2 table first if needed.
    pub(super) fn set_l2_entry(&mut self, guest_offset: u64, entry: L2Entry) -> Result<()> {
        let (l1_index, l2_index) = self.table_indexes(guest_offset);
        let mut l2_offset = self.l1[l1_index] & super::entry::OFFSET_MASK;
        if l2_offset == 0 {
            l2_offset = self.allocate_cluster()?;
            self.make_room_for_l2()?;
            self.l2_cache.insert(l2_offset, vec![0; self.l2_entries() as usize], true);
            self.l1[l1_index] = L1Entry { l2_offset, copied: true }.encode();
            self.l1_dirty = true;
        } else {
            self.load_l2(l2_offset)?;
        }

        let table = self.l2_cache.get_mut(l2_offset).expect("loaded above");
        table.value[l2_index] = entry.encode();
        table.dirty = true;
        self.unsynced = true;
        Ok(())
    }
}

impl Drop for Qcow2Image {
    /// Writes dirty metadata of a writable image that was never closed, so
    /// completed writes are not lost, and releases the lock. Errors are
    /// dropped here; call `close()` (or `flush()`) to see them.
    fn drop(&mut self) {
        let _ = self.write_metadata(true);
        // Unlock explicitly: a child process forked by another thread may
        // still share this file description until it execs, and closing our
        // descriptor alone would leave the lock held through its copy.
        let _ = self.file.unlock();
    }
}

/// Takes an advisory `flock` lock on `file`: exclusive for writing, shared
/// for reading. It is released when the file is closed. QEMU locks with
/// `fcntl` byte ranges instead, so these locks do not conflict with QEMU's.
pub(super) fn lock(file: &File, path: &Path, writable: bool) -> Result<()> {
    let result = if writable { file.try_lock() } else { file.try_lock_shared() };
    match result {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(Qcow2Error::Locked { file: path.to_path_buf(), writable }),
        Err(std::fs::TryLockError::Error(error)) => Err(Qcow2Error::io(path, None, error)),
    }
}

/// Reads at `offset`, filling whatever lies past the end of the file with zeros.
pub(super) fn read_padded(file: &File, path: &Path, offset: u64, buf: &mut [u8]) -> Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(count) => done += count,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(Qcow2Error::io(path, Some(offset + done as u64), error)),
        }
    }
    buf[done..].fill(0);
    Ok(())
}

fn check_cluster_size(cluster_size: u64) -> Result<()> {
    let bits = cluster_size.trailing_zeros();
    if !cluster_size.is_power_of_two() || !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&bits) {
        return Err(Qcow2Error::invalid(format!(
            "cluster size {cluster_size} is invalid: expected a power of two from 512 to 2097152 bytes"
        )));
    }
    Ok(())
}

fn backing_size(path: &Path, format: Format) -> Result<u64> {
    match format {
        Format::Qcow2 => Ok(Qcow2Image::open(path, false)?.virtual_size()),
        Format::Raw => Ok(std::fs::metadata(path).map_err(|error| Qcow2Error::io(path, None, error))?.len()),
    }
}

/// The first cluster after the header: extensions, then the backing name.
struct FirstCluster {
    rest: Vec<u8>,
    backing_offset: u64,
    backing_size: u32,
}

/// Lays out the extensions and the backing name after the header. The
/// feature name table is left out when it does not fit in the cluster
/// (clusters under 1 KiB).
fn layout_first_cluster(cluster_size: u64, backing: Option<&(String, Format)>) -> Result<(Extensions, FirstCluster)> {
    let name = backing.map(|(name, _)| name.as_bytes()).unwrap_or_default();
    if name.len() > MAX_BACKING_FILE_SIZE as usize {
        return Err(Qcow2Error::invalid(format!("backing file name is {} bytes; the maximum is 1023", name.len())));
    }

    let mut extensions = Extensions {
        backing_format: backing.map(|(_, format)| (format.name().to_string(), u64::from(V3_HEADER_LENGTH))),
        feature_names: extension::known_feature_names(),
        ..Extensions::default()
    };
    let fits = |extensions: &Extensions| {
        V3_HEADER_LENGTH as usize + extensions.encode().len() + name.len() <= cluster_size as usize
    };
    if !fits(&extensions) {
        extensions.feature_names.clear();
    }
    if !fits(&extensions) {
        return Err(Qcow2Error::invalid("backing file name does not fit in the first cluster; use larger clusters"));
    }

    let mut rest = extensions.encode();
    let backing_offset = if name.is_empty() { 0 } else { u64::from(V3_HEADER_LENGTH) + rest.len() as u64 };
    rest.extend_from_slice(name);
    Ok((extensions, FirstCluster { rest, backing_offset, backing_size: name.len() as u32 }))
}
