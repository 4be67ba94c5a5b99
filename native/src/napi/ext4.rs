//! Node-API exports of the ext4 writer.

use super::Export;

pub const EXPORTS: &[(&str, Export)] = &[];
