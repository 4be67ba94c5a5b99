//! A backing chain: a top qcow2 image and the images below it, read as one
//! virtual disk. Only the top image is ever written.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::backing::{self, AllowedDir, Format};
use super::entry::L2Entry;
use super::error::{BackingRejection, Qcow2Error, Result};
use super::image::Qcow2Image;
use crate::block::{check_range, BlockDevice};

/// Largest run of new clusters written with one call.
const MAX_RUN_BYTES: usize = 8 << 20;

/// Default maximum number of images in a chain, top included.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Options of [`Chain::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// Open the top image for writing. Backing files are always read-only.
    pub writable: bool,
    /// Directory that backing files must resolve into. Defaults to the top image's directory.
    pub allowed_dir: AllowedDir,
    /// Maximum number of images in the chain, the top image included.
    pub max_depth: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { writable: false, allowed_dir: AllowedDir::TopImageDir, max_depth: DEFAULT_MAX_DEPTH }
    }
}

/// A raw file at the bottom of a chain.
pub struct RawLayer {
    pub(super) path: PathBuf,
    pub(super) file: File,
    pub(super) size: u64,
}

impl Drop for RawLayer {
    /// Releases the shared lock even while a forked child still shares the
    /// file description (see `Qcow2Image`'s `Drop`).
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// One image of a chain.
pub enum Layer {
    Qcow2(Qcow2Image),
    Raw(RawLayer),
}

impl Layer {
    pub fn path(&self) -> &Path {
        match self {
            Layer::Qcow2(image) => image.path(),
            Layer::Raw(raw) => &raw.path,
        }
    }

    pub fn virtual_size(&self) -> u64 {
        match self {
            Layer::Qcow2(image) => image.virtual_size(),
            Layer::Raw(raw) => raw.size,
        }
    }

    pub fn format(&self) -> Format {
        match self {
            Layer::Qcow2(_) => Format::Qcow2,
            Layer::Raw(_) => Format::Raw,
        }
    }
}

pub struct Chain {
    /// `layers[0]` is the top image, and each next one is the backing file of
    /// the one before.
    pub(super) layers: Vec<Layer>,
    pub(super) writable: bool,
}

/// Identity of an open file, to detect cycles through links and `..`.
fn identity(path: &Path) -> Result<(u64, u64)> {
    let metadata = std::fs::metadata(path).map_err(|error| Qcow2Error::io(path, None, error))?;
    Ok((metadata.dev(), metadata.ino()))
}

impl Chain {
    /// Opens `top` and every backing file below it. Each backing file is
    /// opened with the format recorded in the image above it, never probed.
    pub fn open(top: &Path, options: &OpenOptions) -> Result<Chain> {
        let top_image = Qcow2Image::open(top, options.writable)?;
        let allowed = match &options.allowed_dir {
            AllowedDir::TopImageDir => Some(backing::canonical_parent(top)?),
            AllowedDir::Dir(dir) => Some(dir.canonicalize().map_err(|error| Qcow2Error::io(dir, None, error))?),
            AllowedDir::Anywhere => None,
        };

        let mut seen = HashSet::from([identity(top)?]);
        let mut layers = vec![Layer::Qcow2(top_image)];
        while let Some(Layer::Qcow2(image)) = layers.last() {
            let Some(next) = open_backing(image, layers.len(), options.max_depth, allowed.as_deref(), &mut seen)?
            else {
                break;
            };
            layers.push(next);
        }
        Ok(Chain { layers, writable: options.writable })
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn top(&self) -> &Qcow2Image {
        match &self.layers[0] {
            Layer::Qcow2(image) => image,
            Layer::Raw(_) => unreachable!("the top of a chain is always qcow2"),
        }
    }

    fn top_mut(&mut self) -> &mut Qcow2Image {
        match &mut self.layers[0] {
            Layer::Qcow2(image) => image,
            Layer::Raw(_) => unreachable!("the top of a chain is always qcow2"),
        }
    }

    pub fn virtual_size(&self) -> u64 {
        self.top().virtual_size()
    }

    pub fn cluster_size(&self) -> u64 {
        self.top().cluster_size()
    }

    /// Flushes the top image and closes the chain.
    pub fn close(mut self) -> Result<()> {
        self.top_mut().flush()
    }

    /// Closes the chain without writing metadata that is still in memory,
    /// for recovery after a panic left it in an unknown state. The file
    /// stays as consistent as after its last flush; clusters written since
    /// may leak.
    pub fn discard(mut self) {
        self.top_mut().discard();
    }

    /// Reads `buf.len()` bytes at `offset` of the disk seen from layer
    /// `index` down. Bytes past the layer's virtual size read as zeros, so a
    /// shorter backing file reads as zeros past its end.
    pub(super) fn read_layer(&mut self, index: usize, offset: u64, buf: &mut [u8]) -> Result<()> {
        let size = self.layers[index].virtual_size();
        let inside = size.saturating_sub(offset).min(buf.len() as u64) as usize;
        buf[inside..].fill(0);
        let buf = &mut buf[..inside];

        let image = match &mut self.layers[index] {
            Layer::Raw(raw) => return read_raw(raw, offset, buf),
            Layer::Qcow2(image) => image,
        };
        let cluster_size = image.cluster_size();
        let mut done = 0usize;
        while done < buf.len() {
            let position = offset + done as u64;
            let in_cluster = position % cluster_size;
            let length = ((cluster_size - in_cluster) as usize).min(buf.len() - done);
            let piece = &mut buf[done..done + length];
            let Layer::Qcow2(image) = &mut self.layers[index] else { unreachable!() };

            match image.l2_entry(position)? {
                L2Entry::Data { host_offset, .. } => image.read_host(host_offset + in_cluster, piece)?,
                L2Entry::Unallocated if index + 1 < self.layers.len() => self.read_layer(index + 1, position, piece)?,
                _ => piece.fill(0),
            }
            done += length;
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        if !self.writable {
            return Err(Qcow2Error::ReadOnly { file: self.top().path().to_path_buf() });
        }
        Ok(())
    }

    fn check_range(&self, offset: u64, length: u64) -> Result<()> {
        check_range(self.virtual_size(), offset, length).map_err(|error| Qcow2Error::invalid(error.to_string()))
    }

    /// Reads `buf.len()` bytes at guest `offset`.
    pub fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        self.read_layer(0, offset, buf)
    }

    /// Writes `buf` at guest `offset` into the top image. A partial write
    /// to a cluster the top image does not have copies the rest of the
    /// cluster from the chain below first (copy-on-write).
    pub fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.check_range(offset, buf.len() as u64)?;
        let mut done = 0usize;
        while done < buf.len() {
            let position = offset + done as u64;
            let (start, span) = self.cluster_span(position);
            if position == start && (buf.len() - done) as u64 >= span {
                let written = self.write_new_clusters(position, &buf[done..])?;
                if written > 0 {
                    done += written;
                    continue;
                }
            }
            let length = ((start + span - position) as usize).min(buf.len() - done);
            self.write_in_cluster(position, &buf[done..done + length])?;
            done += length;
        }
        Ok(())
    }

    /// Writes the longest run (up to `MAX_RUN_BYTES`) of whole clusters from
    /// `position` that the top image has no data for, with one write per
    /// range of contiguous host clusters. Returns the bytes written, 0 when
    /// the first cluster already has data.
    fn write_new_clusters(&mut self, position: u64, data: &[u8]) -> Result<usize> {
        let size = self.virtual_size();
        let mut run: Vec<(u64, u64)> = Vec::new();
        let mut consumed = 0usize;
        while consumed < MAX_RUN_BYTES && position + (consumed as u64) < size {
            let guest = position + consumed as u64;
            let (_, span) = self.cluster_span(guest);
            if ((data.len() - consumed) as u64) < span {
                break;
            }
            let top = self.top_mut();
            if !matches!(top.l2_entry(guest)?, L2Entry::Unallocated | L2Entry::Zero { host_offset: 0, .. }) {
                break;
            }
            run.push((guest, top.allocate_cluster()?));
            consumed += span as usize;
        }

        // Data first: the L2 entries that point at it are set afterwards.
        // NOTE: if a write fails here, the clusters allocated above stay
        // counted but unreferenced. That is a leak, which
        // `qemu-img check -r leaks` reclaims, never a corruption.
        let cluster_size = self.cluster_size();
        let top = self.top_mut();
        let mut first = 0;
        while first < run.len() {
            let mut last = first;
            while last + 1 < run.len() && run[last + 1].1 == run[last].1 + cluster_size {
                last += 1;
            }
            let begin = (run[first].0 - position) as usize;
            let end = if last + 1 < run.len() { (run[last + 1].0 - position) as usize } else { consumed };
            top.write_host(run[first].1, &data[begin..end])?;
            first = last + 1;
        }
        for (guest, host_offset) in run {
            top.set_l2_entry(guest, L2Entry::Data { host_offset, copied: true })?;
        }
        Ok(consumed)
    }

    /// Returns the guest offset of the cluster that contains `position` and the
    /// number of guest bytes in it (less than a cluster at the end of the disk).
    fn cluster_span(&self, position: u64) -> (u64, u64) {
        let cluster_size = self.cluster_size();
        let start = position - position % cluster_size;
        (start, cluster_size.min(self.virtual_size() - start))
    }

    fn write_in_cluster(&mut self, position: u64, data: &[u8]) -> Result<()> {
        let (start, span) = self.cluster_span(position);
        let in_cluster = (position - start) as usize;
        let whole = data.len() as u64 == span;
        let top = self.top_mut();

        let entry = top.l2_entry(position)?;
        let host_offset = match entry {
            L2Entry::Data { host_offset, copied: true } => {
                let entry_offset = top.l2_entry_offset(position);
                top.check_overlap(host_offset, top.cluster_size(), "L2 entry", entry_offset)?;
                return top.write_host(host_offset + in_cluster as u64, data);
            }
            L2Entry::Zero { host_offset, copied: true } if host_offset != 0 => {
                let entry_offset = top.l2_entry_offset(position);
                top.check_overlap(host_offset, top.cluster_size(), "L2 entry", entry_offset)?;
                Some(host_offset)
            }
            L2Entry::Zero { host_offset: 0, .. } | L2Entry::Unallocated => None,
            _ => {
                let entry_offset = top.l2_entry_offset(position);
                return Err(Qcow2Error::unsupported(
                    top.path(),
                    entry_offset,
                    "writing a cluster shared with a snapshot",
                    position,
                ));
            }
        };
        let from_below = entry == L2Entry::Unallocated && self.layers.len() > 1;

        let mut cluster = vec![0u8; self.cluster_size() as usize];
        if !whole && from_below {
            self.read_layer(1, start, &mut cluster[..span as usize])?;
        }
        cluster[in_cluster..in_cluster + data.len()].copy_from_slice(data);

        let top = self.top_mut();
        let host_offset = match host_offset {
            Some(offset) => offset,
            None => top.allocate_cluster()?,
        };
        // Data first: the L2 entry that points at it is written later.
        top.write_host(host_offset, &cluster)?;
        top.set_l2_entry(position, L2Entry::Data { host_offset, copied: true })
    }

    /// Makes `length` bytes at `offset` read as zeros. Whole clusters get
    /// the L2 zero flag, which also masks data in lower layers; partial
    /// clusters are written as data.
    pub fn write_zeroes(&mut self, offset: u64, length: u64) -> Result<()> {
        self.check_writable()?;
        self.check_range(offset, length)?;
        let end = offset + length;
        let mut position = offset;
        while position < end {
            let (start, span) = self.cluster_span(position);
            let piece = (start + span).min(end) - position;
            self.zero_in_cluster(position, piece, piece == span)?;
            position += piece;
        }
        Ok(())
    }

    fn zero_in_cluster(&mut self, position: u64, length: u64, whole: bool) -> Result<()> {
        let has_backing = self.layers.len() > 1;
        let top = self.top_mut();
        let entry = top.l2_entry(position)?;
        let reads_zero = match entry {
            L2Entry::Zero { .. } => true,
            L2Entry::Unallocated => !has_backing,
            _ => false,
        };
        if reads_zero {
            return Ok(());
        }
        if !whole {
            return self.write_in_cluster(position, &vec![0u8; length as usize]);
        }

        let zero = match entry {
            L2Entry::Data { host_offset, copied } => L2Entry::Zero { host_offset, copied },
            _ => L2Entry::Zero { host_offset: 0, copied: false },
        };
        top.set_l2_entry(position, zero)
    }

    /// Writes dirty metadata of the top image and syncs it.
    pub fn flush(&mut self) -> Result<()> {
        self.top_mut().flush()
    }

    /// Returns what layers `0..layers` store for the `length` bytes at
    /// `offset`: unallocated if no layer has an entry for any part, zero if
    /// every part is zero in the first layer with an entry for it, and data
    /// otherwise (mixed ranges included).
    pub(super) fn status(&mut self, layers: usize, offset: u64, length: u64) -> Result<Status> {
        let mut pending = vec![(offset, length)];
        let mut result = Status::Unallocated;
        for index in 0..layers {
            let mut below = Vec::new();
            for &(start, length) in &pending {
                let layer_result = self.layer_status(index, start, length, &mut below)?;
                result = result.combine(layer_result);
                if result == Status::Data {
                    return Ok(Status::Data);
                }
            }
            pending = below;
            if pending.is_empty() {
                break;
            }
        }
        // Part zero and part unallocated: only reading the chain gives the
        // right bytes, because the unallocated part shows the layers below.
        if result == Status::Zero && !pending.is_empty() {
            return Ok(Status::Data);
        }
        Ok(result)
    }

    /// Classifies one range in one layer; unallocated pieces are appended to
    /// `below` for the next layer.
    fn layer_status(&mut self, index: usize, offset: u64, length: u64, below: &mut Vec<(u64, u64)>) -> Result<Status> {
        let size = self.layers[index].virtual_size();
        let inside = size.saturating_sub(offset).min(length);
        let mut status = if inside < length { Status::Zero } else { Status::Unallocated };
        let image = match &mut self.layers[index] {
            Layer::Raw(_) => return Ok(if inside > 0 { Status::Data } else { status }),
            Layer::Qcow2(image) => image,
        };

        let cluster_size = image.cluster_size();
        let mut position = offset;
        while position < offset + inside {
            let piece = (cluster_size - position % cluster_size).min(offset + inside - position);
            match image.l2_entry(position)? {
                L2Entry::Data { .. } => return Ok(Status::Data),
                L2Entry::Zero { .. } => status = status.combine(Status::Zero),
                _ => below.push((position, piece)),
            }
            position += piece;
        }
        Ok(status)
    }
}

/// Allocation status of a range, from [`Chain::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Unallocated,
    Zero,
    Data,
}

impl Status {
    /// Combines the statuses of two parts of one range.
    fn combine(self, other: Status) -> Status {
        match (self, other) {
            (Status::Data, _) | (_, Status::Data) => Status::Data,
            (Status::Zero, _) | (_, Status::Zero) => Status::Zero,
            _ => Status::Unallocated,
        }
    }
}

fn read_raw(raw: &RawLayer, offset: u64, buf: &mut [u8]) -> Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match raw.file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(count) => done += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(Qcow2Error::io(&raw.path, Some(offset + done as u64), error)),
        }
    }
    buf[done..].fill(0);
    Ok(())
}

/// Opens the backing file of `image`, which is at depth `depth` (1 for the
/// top image), or returns `None` when it has none.
fn open_backing(
    image: &Qcow2Image,
    depth: usize,
    max_depth: usize,
    allowed: Option<&Path>,
    seen: &mut HashSet<(u64, u64)>,
) -> Result<Option<Layer>> {
    let Some(name) = image.backing_name() else { return Ok(None) };
    let file = image.path();
    let name_offset = image.header.backing_file_offset;
    backing::check_name(name, file, name_offset)?;

    let Some((format_name, format_offset)) = &image.extensions.backing_format else {
        return Err(Qcow2Error::BackingFormatMissing {
            file: file.to_path_buf(),
            offset: name_offset,
            name: name.to_string(),
        });
    };
    let Some(format) = Format::parse(format_name) else {
        let feature = format!("backing file format {format_name:?} (only qcow2 and raw are read)");
        return Err(Qcow2Error::unsupported(file, *format_offset, feature, 0));
    };
    if depth >= max_depth {
        return Err(Qcow2Error::ChainTooDeep { file: file.to_path_buf(), offset: name_offset, max_depth });
    }

    let path = backing::resolve(file, name);
    let canonical = path.canonicalize().map_err(|error| Qcow2Error::io(&path, None, error))?;
    if let Some(allowed) = allowed {
        if !canonical.starts_with(allowed) {
            let reason = BackingRejection::OutsideAllowedDir { resolved: canonical, allowed: allowed.to_path_buf() };
            return Err(Qcow2Error::BackingRejected {
                file: file.to_path_buf(),
                offset: name_offset,
                name: name.to_string(),
                reason,
            });
        }
    }
    if !std::fs::metadata(&canonical).is_ok_and(|metadata| metadata.is_file()) {
        let reason = BackingRejection::NotRegularFile;
        return Err(Qcow2Error::BackingRejected {
            file: file.to_path_buf(),
            offset: name_offset,
            name: name.to_string(),
            reason,
        });
    }
    if !seen.insert(identity(&canonical)?) {
        return Err(Qcow2Error::BackingCycle { file: file.to_path_buf(), offset: name_offset, name: name.to_string() });
    }

    let layer = match format {
        Format::Qcow2 => Layer::Qcow2(Qcow2Image::open(&path, false)?),
        Format::Raw => {
            let raw = File::open(&path).map_err(|error| Qcow2Error::io(&path, None, error))?;
            super::image::lock(&raw, &path, false)?;
            let size = raw.metadata().map_err(|error| Qcow2Error::io(&path, None, error))?.len();
            Layer::Raw(RawLayer { path, file: raw, size })
        }
    };
    Ok(Some(layer))
}

impl BlockDevice for Chain {
    fn size(&self) -> u64 {
        self.virtual_size()
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        Ok(self.read(offset, buf)?)
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        Ok(self.write(offset, buf)?)
    }

    fn write_zeroes(&mut self, offset: u64, length: u64) -> io::Result<()> {
        Ok(Chain::write_zeroes(self, offset, length)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(Chain::flush(self)?)
    }
}
