//! QCOW2 version 2 and 3 images and backing chains, as specified by QEMU's
//! `docs/interop/qcow2.txt`.
