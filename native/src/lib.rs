//! Native core of layerdisk: the qcow2 engine and the ext4 writer.
//!
//! Only the `napi` module may use `unsafe` code.

#![deny(unsafe_code)]

pub mod block;
pub mod ext4;
pub mod lockfile;
pub mod qcow2;
pub mod report;

#[allow(unsafe_code)]
mod napi;
