//! Backing file names: validation, resolution and the open policy.
//!
//! A backing file name is resolved relative to the directory of the image
//! that names it, as QEMU does. Names with a protocol prefix (`nbd:`,
//! `http:`, …) and `json:` pseudo-filenames are always rejected, because
//! this engine only opens local files and must never probe or connect.

use std::path::{Component, Path, PathBuf};

use super::error::{BackingRejection, Qcow2Error, Result};

/// Format of a backing file, as recorded in the backing file format extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Qcow2,
    Raw,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "qcow2" => Some(Format::Qcow2),
            "raw" => Some(Format::Raw),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Qcow2 => "qcow2",
            Format::Raw => "raw",
        }
    }
}

/// Directory policy for backing files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowedDir {
    /// The directory of the top image, and everything below it.
    #[default]
    TopImageDir,
    /// This directory and everything below it.
    Dir(PathBuf),
    /// Anywhere: the caller opts out of the check.
    Anywhere,
}

/// Rejects protocol prefixes and `json:` names. Like QEMU, a name has a
/// protocol prefix when a `:` comes before the first `/`.
pub fn check_name(name: &str, file: &Path, offset: u64) -> Result<()> {
    let rejected =
        |reason| Qcow2Error::BackingRejected { file: file.to_path_buf(), offset, name: name.to_string(), reason };
    if name.is_empty() {
        return Err(rejected(BackingRejection::Invalid));
    }
    if name.starts_with("json:") {
        return Err(rejected(BackingRejection::Json));
    }
    let first_component = name.split('/').next().unwrap_or("");
    if first_component.contains(':') {
        return Err(rejected(BackingRejection::Protocol));
    }
    Ok(())
}

/// Resolves `name` relative to the directory of `image`.
pub fn resolve(image: &Path, name: &str) -> PathBuf {
    let name = Path::new(name);
    if name.is_absolute() {
        return name.to_path_buf();
    }
    image.parent().unwrap_or(Path::new(".")).join(name)
}

/// Returns the name of `backing` relative to the directory of `image`,
/// which is what new images record. Both paths must exist or, for
/// `image`, have an existing parent directory.
pub fn relative_name(image: &Path, backing: &Path) -> Result<String> {
    let image_dir = canonical_parent(image)?;
    let backing = backing.canonicalize().map_err(|error| Qcow2Error::io(backing, None, error))?;

    let from: Vec<Component> = image_dir.components().collect();
    let to: Vec<Component> = backing.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();

    let mut relative = PathBuf::new();
    for _ in common..from.len() {
        relative.push("..");
    }
    for component in &to[common..] {
        relative.push(component.as_os_str());
    }
    relative
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| Qcow2Error::invalid(format!("backing path {} is not valid UTF-8", backing.display())))
}

/// Returns the canonical directory that contains `path`.
pub fn canonical_parent(path: &Path) -> Result<PathBuf> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    parent.canonicalize().map_err(|error| Qcow2Error::io(parent, None, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_and_json_names_are_rejected() {
        for name in ["nbd:localhost:10809", "http://example/disk", "json:{\"driver\":\"raw\"}", "file:x.qcow2", ""] {
            assert!(check_name(name, Path::new("top"), 8).is_err(), "{name}");
        }
        for name in ["base.qcow2", "./a:b.qcow2", "../layers/base.qcow2", "/abs/base.raw"] {
            assert!(check_name(name, Path::new("top"), 8).is_ok(), "{name}");
        }
    }

    #[test]
    fn resolve_is_relative_to_the_image_directory() {
        assert_eq!(resolve(Path::new("/a/b/top.qcow2"), "base.qcow2"), PathBuf::from("/a/b/base.qcow2"));
        assert_eq!(resolve(Path::new("/a/b/top.qcow2"), "/c/base"), PathBuf::from("/c/base"));
        assert_eq!(resolve(Path::new("top.qcow2"), "base"), PathBuf::from("base"));
    }

    #[test]
    fn format_names_round_trip() {
        for format in [Format::Qcow2, Format::Raw] {
            assert_eq!(Format::parse(format.name()), Some(format));
        }
        assert_eq!(Format::parse("vmdk"), None);
    }
}
