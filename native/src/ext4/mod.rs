//! An ext4 writer, as specified by the kernel's `Documentation/filesystems/ext4/`.
