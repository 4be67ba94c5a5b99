//! Node-API exports of the qcow2 engine.

use super::Export;

pub const EXPORTS: &[(&str, Export)] = &[];
