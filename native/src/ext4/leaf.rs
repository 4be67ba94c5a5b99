//! Entry-level edits inside one directory leaf block.
//!
//! `usable` is the block length minus the checksum tail when the
//! filesystem has `metadata_csum`; entries never reach into the tail.

use super::dirent::{self, record_size, DirEntry};
use super::error::Result;

/// A live entry and where it sits in its block.
pub(crate) struct Found {
    pub offset: usize,
    /// Offset of the record before it, whose `rec_len` absorbs a removal.
    pub previous: Option<usize>,
    pub entry: DirEntry,
}

/// Returns every record of the block, live or not, with its offset.
pub(crate) fn records(block: &[u8], usable: usize, location: u64) -> Result<Vec<(usize, DirEntry)>> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < usable {
        let entry = DirEntry::decode(&block[..usable], offset, location)?;
        let next = offset + entry.rec_len as usize;
        out.push((offset, entry));
        offset = next;
    }
    Ok(out)
}

/// Returns the live entries of the block.
pub(crate) fn live_entries(block: &[u8], usable: usize, location: u64) -> Result<Vec<DirEntry>> {
    Ok(records(block, usable, location)?.into_iter().map(|(_, e)| e).filter(|e| e.inode != 0).collect())
}

pub(crate) fn find(block: &[u8], usable: usize, name: &[u8], location: u64) -> Result<Option<Found>> {
    let mut previous = None;
    for (offset, entry) in records(block, usable, location)? {
        if entry.inode != 0 && entry.name == name {
            return Ok(Some(Found { offset, previous, entry }));
        }
        previous = Some(offset);
    }
    Ok(None)
}

/// Inserts an entry into the first record with enough slack; returns
/// `false` when no record has room.
pub(crate) fn insert(block: &mut [u8], usable: usize, entry: &DirEntry, location: u64) -> Result<bool> {
    let needed = record_size(entry.name.len());
    for (offset, record) in records(block, usable, location)? {
        let used = if record.inode == 0 { 0 } else { record_size(record.name.len()) };
        let slack = record.rec_len as usize - used;
        if slack < needed {
            continue;
        }
        if record.inode == 0 {
            DirEntry { rec_len: record.rec_len, ..entry.clone() }.encode(block, offset);
        } else {
            DirEntry { rec_len: used as u16, ..record }.encode(block, offset);
            DirEntry { rec_len: slack as u16, ..entry.clone() }.encode(block, offset + used);
        }
        return Ok(true);
    }
    Ok(false)
}

/// Inserts an entry into a block whose live entries leave room for it,
/// packing the block first when the free space is split across records.
pub(crate) fn insert_compacting(block: &mut [u8], usable: usize, entry: &DirEntry, location: u64) -> Result<()> {
    if insert(block, usable, entry, location)? {
        return Ok(());
    }
    let mut entries = live_entries(block, usable, location)?;
    entries.push(entry.clone());
    debug_assert!(packed_size(&entries) <= usable, "the caller checked that the entry fits");
    pack(block, usable, &entries);
    Ok(())
}

/// Removes a found entry: the record before it grows over it, or, when it
/// is first in the block, it is marked unused.
pub(crate) fn remove(block: &mut [u8], found: &Found) {
    match found.previous {
        Some(previous) => {
            let rec_len = super::le::u16_at(block, previous + dirent::REC_LEN) + found.entry.rec_len;
            super::le::put_u16(block, previous + dirent::REC_LEN, rec_len);
        }
        None => super::le::put_u32(block, found.offset + dirent::INODE, 0),
    }
}

/// Rewrites the block to hold exactly `entries`, packed from the start;
/// the last record spans the rest of the usable space.
pub(crate) fn pack(block: &mut [u8], usable: usize, entries: &[DirEntry]) {
    block[..usable].fill(0);
    if entries.is_empty() {
        DirEntry { inode: 0, rec_len: usable as u16, file_type: 0, name: Vec::new() }.encode(block, 0);
        return;
    }
    let mut offset = 0;
    for (i, entry) in entries.iter().enumerate() {
        let size = record_size(entry.name.len());
        let rec_len = if i + 1 == entries.len() { usable - offset } else { size };
        DirEntry { rec_len: rec_len as u16, ..entry.clone() }.encode(block, offset);
        offset += size;
    }
}

/// Bytes `entries` take when packed.
pub(crate) fn packed_size(entries: &[DirEntry]) -> usize {
    entries.iter().map(|e| record_size(e.name.len())).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, inode: u32) -> DirEntry {
        DirEntry { inode, rec_len: 0, file_type: 1, name: name.as_bytes().to_vec() }
    }

    #[test]
    fn insert_find_remove() {
        let mut block = vec![0u8; 4096];
        let usable = 4096 - 12;
        pack(&mut block, usable, &[]);
        for i in 0..100 {
            assert!(insert(&mut block, usable, &entry(&format!("file{i}"), i + 1), 0).unwrap());
        }
        let found = find(&block, usable, b"file50", 0).unwrap().unwrap();
        assert_eq!(found.entry.inode, 51);
        remove(&mut block, &found);
        assert!(find(&block, usable, b"file50", 0).unwrap().is_none());
        assert_eq!(live_entries(&block, usable, 0).unwrap().len(), 99);
        let first = find(&block, usable, b"file0", 0).unwrap().unwrap();
        remove(&mut block, &first);
        assert_eq!(live_entries(&block, usable, 0).unwrap().len(), 98);
        assert!(insert(&mut block, usable, &entry("again", 7), 0).unwrap());
    }

    #[test]
    fn compacting_insert_uses_scattered_space() {
        let mut block = vec![0u8; 4096];
        let usable = 4096 - 12;
        pack(&mut block, usable, &[]);
        let mut count = 0;
        while insert(&mut block, usable, &entry(&format!("{:0>100}", count), 5), 0).unwrap() {
            count += 1;
        }
        // Free every other record: plenty of space, but no single gap fits 200 bytes.
        for i in (0..count).step_by(2) {
            let found = find(&block, usable, format!("{:0>100}", i).as_bytes(), 0).unwrap().unwrap();
            remove(&mut block, &found);
        }
        let big = entry(&"b".repeat(200), 9);
        assert!(!insert(&mut block.clone(), usable, &big, 0).unwrap());
        insert_compacting(&mut block, usable, &big, 0).unwrap();
        assert_eq!(find(&block, usable, big.name.as_slice(), 0).unwrap().unwrap().entry.inode, 9);
        assert_eq!(live_entries(&block, usable, 0).unwrap().len(), count / 2 + 1);
    }

    #[test]
    fn full_block_rejects_insert() {
        let mut block = vec![0u8; 4096];
        let usable = 4096 - 12;
        pack(&mut block, usable, &[]);
        let mut count = 0;
        while insert(&mut block, usable, &entry(&format!("{:0>200}", count), 5), 0).unwrap() {
            count += 1;
        }
        assert_eq!(count, usable / record_size(200));
    }
}
