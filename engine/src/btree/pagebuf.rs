//! Edits of a writable page (or sub-page) buffer: LMDB's `mdb_node_add`,
//! `mdb_node_del` and their LEAF2 forms, on bytes the caller owns.
//!
//! The buffers are dirty copies that this transaction built or copied from
//! validated pages, so offsets read back here were written by us or checked
//! when the original page was viewed.

use alloc::vec::Vec;

use crate::format::{NodeFlags, PageFlags, NODE_HEADER_SIZE, PAGE_HEADER_SIZE};

#[inline]
fn get16(p: &[u8], off: usize) -> usize {
    u16::from_le_bytes([p[off], p[off + 1]]) as usize
}
#[inline]
fn put16(p: &mut [u8], off: usize, v: usize) {
    p[off..off + 2].copy_from_slice(&(v as u16).to_le_bytes());
}

/// Rounds up to an even size: nodes are 2-byte aligned.
#[inline]
pub(crate) const fn even(n: usize) -> usize {
    (n + 1) & !1
}

/// Writes a fresh, empty page header.
pub(crate) fn init(p: &mut [u8], pgno: u64, flags: u16) {
    p[..PAGE_HEADER_SIZE].fill(0);
    p[0..8].copy_from_slice(&pgno.to_le_bytes());
    p[10..12].copy_from_slice(&flags.to_le_bytes());
    put16(p, 12, PAGE_HEADER_SIZE);
    let len = p.len();
    put16(p, 14, len);
}

/// `mp_flags`.
pub(crate) fn flags(p: &[u8]) -> u16 {
    get16(p, 10) as u16
}
/// Sets `mp_pad`.
pub(crate) fn set_pad(p: &mut [u8], pad: usize) {
    put16(p, 8, pad);
}
/// `mp_lower`.
pub(crate) fn lower(p: &[u8]) -> usize {
    get16(p, 12)
}
/// `mp_upper`.
pub(crate) fn upper(p: &[u8]) -> usize {
    get16(p, 14)
}
/// Number of entries.
pub(crate) fn nkeys(p: &[u8]) -> usize {
    (lower(p) - PAGE_HEADER_SIZE) / 2
}
/// Free bytes between the pointer array and the nodes (`SIZELEFT`).
pub(crate) fn size_left(p: &[u8]) -> usize {
    upper(p) - lower(p)
}
fn is_leaf2(p: &[u8]) -> bool {
    flags(p) & PageFlags::LEAF2.0 != 0
}
fn is_branch(p: &[u8]) -> bool {
    flags(p) & PageFlags::BRANCH.0 != 0
}
fn ptr(p: &[u8], i: usize) -> usize {
    get16(p, PAGE_HEADER_SIZE + 2 * i)
}

/// Raw length of node `i` (header, key and inline data), without padding.
pub(crate) fn node_len(p: &[u8], i: usize) -> usize {
    let off = ptr(p, i);
    let ksize = get16(p, off + 6);
    if is_branch(p) {
        return NODE_HEADER_SIZE + ksize;
    }
    let flags = get16(p, off + 4) as u16;
    let dsize = get16(p, off) | (get16(p, off + 2) << 16);
    let dlen = if flags & NodeFlags::BIGDATA.0 != 0 {
        8
    } else {
        dsize
    };
    NODE_HEADER_SIZE + ksize + dlen
}

/// The raw bytes of node `i`.
pub(crate) fn node_bytes(p: &[u8], i: usize) -> &[u8] {
    let off = ptr(p, i);
    &p[off..off + node_len(p, i)]
}

/// Space a node of raw length `len` takes on a page, pointer included.
#[inline]
pub(crate) const fn node_space(len: usize) -> usize {
    even(len) + 2
}

/// Inserts the raw node `node` at index `i`. Returns false if it does not fit.
pub(crate) fn add_node(p: &mut [u8], i: usize, node: &[u8]) -> bool {
    let size = even(node.len());
    if size_left(p) < size + 2 {
        return false;
    }
    let n = nkeys(p);
    let start = PAGE_HEADER_SIZE + 2 * i;
    let end = PAGE_HEADER_SIZE + 2 * n;
    p.copy_within(start..end, start + 2);
    let ofs = upper(p) - size;
    put16(p, start, ofs);
    p[ofs..ofs + node.len()].copy_from_slice(node);
    if size > node.len() {
        p[ofs + node.len()] = 0;
    }
    put16(p, 12, lower(p) + 2);
    put16(p, 14, ofs);
    true
}

/// Inserts a leaf node built from its parts at index `i`, writing header,
/// key and data straight into the page (`mdb_node_add`) rather than
/// through an intermediate buffer. `data` is the inline value, or the
/// overflow page number of a BIGDATA node; `dsize` the value's size.
/// Returns false if it does not fit.
pub(crate) fn add_leaf(
    p: &mut [u8],
    i: usize,
    key: &[u8],
    data: &[u8],
    dsize: usize,
    flags: NodeFlags,
) -> bool {
    let len = NODE_HEADER_SIZE + key.len() + data.len();
    let size = even(len);
    let (lo, up) = (lower(p), upper(p));
    if up < lo + size + 2 {
        return false;
    }
    let start = PAGE_HEADER_SIZE + 2 * i;
    // Appends (the common case of sequential loads) move no pointers.
    if start < lo {
        p.copy_within(start..lo, start + 2);
    }
    let ofs = up - size;
    put16(p, start, ofs);
    let mut h = [0u8; NODE_HEADER_SIZE];
    h[0..2].copy_from_slice(&((dsize & 0xffff) as u16).to_le_bytes());
    h[2..4].copy_from_slice(&(((dsize >> 16) & 0xffff) as u16).to_le_bytes());
    h[4..6].copy_from_slice(&flags.0.to_le_bytes());
    h[6..8].copy_from_slice(&(key.len() as u16).to_le_bytes());
    let node = &mut p[ofs..ofs + size];
    node[..NODE_HEADER_SIZE].copy_from_slice(&h);
    let (k, d) = node[NODE_HEADER_SIZE..].split_at_mut(key.len());
    k.copy_from_slice(key);
    d[..data.len()].copy_from_slice(data);
    if size > len {
        d[data.len()] = 0;
    }
    put16(p, 12, lo + 2);
    put16(p, 14, ofs);
    true
}

/// Removes node `i`, closing the gap (`mdb_node_del`).
pub(crate) fn del_node(p: &mut [u8], i: usize) {
    let n = nkeys(p);
    let off = ptr(p, i);
    let size = even(node_len(p, i));
    let start = PAGE_HEADER_SIZE + 2 * i;
    let end = PAGE_HEADER_SIZE + 2 * n;
    // The nodes below the one removed move up by its size. One pass over
    // the pointers as a slice, which the compiler turns into vector code.
    for slot in p[PAGE_HEADER_SIZE..end].chunks_exact_mut(2) {
        let o = u16::from_le_bytes([slot[0], slot[1]]) as usize;
        let o = if o < off { o + size } else { o };
        slot.copy_from_slice(&(o as u16).to_le_bytes());
    }
    p.copy_within(start + 2..end, start);
    let up = upper(p);
    p.copy_within(up..off, up + size);
    put16(p, 12, lower(p) - 2);
    put16(p, 14, up + size);
}

/// Inserts `key` at index `i` of a LEAF2 page. Returns false if it does not fit.
pub(crate) fn add_leaf2(p: &mut [u8], i: usize, key: &[u8]) -> bool {
    let ksize = key.len();
    if size_left(p) < ksize {
        return false;
    }
    let n = nkeys(p);
    let start = PAGE_HEADER_SIZE + i * ksize;
    let end = PAGE_HEADER_SIZE + n * ksize;
    p.copy_within(start..end, start + ksize);
    p[start..start + ksize].copy_from_slice(key);
    put16(p, 12, lower(p) + 2);
    put16(p, 14, upper(p) - (ksize - 2));
    true
}

/// Removes key `i` of a LEAF2 page whose keys are `ksize` bytes.
pub(crate) fn del_leaf2(p: &mut [u8], i: usize, ksize: usize) {
    let n = nkeys(p);
    let start = PAGE_HEADER_SIZE + i * ksize;
    let end = PAGE_HEADER_SIZE + n * ksize;
    p.copy_within(start + ksize..end, start);
    put16(p, 12, lower(p) - 2);
    put16(p, 14, upper(p) + (ksize - 2));
}

/// Key `i` of a LEAF2 page.
pub(crate) fn leaf2_key(p: &[u8], i: usize, ksize: usize) -> &[u8] {
    let start = PAGE_HEADER_SIZE + i * ksize;
    &p[start..start + ksize]
}

/// Replaces the child page number of branch node `i`.
pub(crate) fn set_child(p: &mut [u8], i: usize, child: u64) {
    let off = ptr(p, i);
    put16(p, off, (child & 0xffff) as usize);
    put16(p, off + 2, ((child >> 16) & 0xffff) as usize);
    put16(p, off + 4, ((child >> 32) & 0xffff) as usize);
}

/// Overwrites the inline data of leaf node `i` in place; `data` must have
/// the node's current data size.
pub(crate) fn overwrite_data(p: &mut [u8], i: usize, data: &[u8]) {
    let off = ptr(p, i);
    let ksize = get16(p, off + 6);
    let d = off + NODE_HEADER_SIZE + ksize;
    p[d..d + data.len()].copy_from_slice(data);
}

/// A raw leaf node: header, key, then `data` (or an overflow page number).
pub(crate) fn leaf_node(key: &[u8], data: &[u8], dsize: usize, flags: NodeFlags) -> Vec<u8> {
    let mut n = Vec::with_capacity(NODE_HEADER_SIZE + key.len() + data.len());
    n.extend_from_slice(&((dsize & 0xffff) as u16).to_le_bytes());
    n.extend_from_slice(&(((dsize >> 16) & 0xffff) as u16).to_le_bytes());
    n.extend_from_slice(&flags.0.to_le_bytes());
    n.extend_from_slice(&(key.len() as u16).to_le_bytes());
    n.extend_from_slice(key);
    n.extend_from_slice(data);
    n
}

/// A raw branch node pointing at `child`.
pub(crate) fn branch_node(key: &[u8], child: u64) -> Vec<u8> {
    let mut n = Vec::with_capacity(NODE_HEADER_SIZE + key.len());
    n.extend_from_slice(&((child & 0xffff) as u16).to_le_bytes());
    n.extend_from_slice(&(((child >> 16) & 0xffff) as u16).to_le_bytes());
    n.extend_from_slice(&(((child >> 32) & 0xffff) as u16).to_le_bytes());
    n.extend_from_slice(&(key.len() as u16).to_le_bytes());
    n.extend_from_slice(key);
    n
}

/// The key of a raw node.
pub(crate) fn raw_key(node: &[u8]) -> &[u8] {
    let ksize = get16(node, 6);
    &node[NODE_HEADER_SIZE..NODE_HEADER_SIZE + ksize]
}

/// The child of a raw branch node.
pub(crate) fn raw_child(node: &[u8]) -> u64 {
    get16(node, 0) as u64 | (get16(node, 2) as u64) << 16 | (get16(node, 4) as u64) << 32
}

/// Is the page a LEAF2 page?
pub(crate) fn leaf2(p: &[u8]) -> bool {
    is_leaf2(p)
}

/// Bytes in use on the page, as LMDB's `PAGEFILL` counts them, in 1/1000.
pub(crate) fn fill(p: &[u8], page_size: usize) -> usize {
    let cap = page_size - PAGE_HEADER_SIZE;
    1000 * (cap - size_left(p).min(cap)) / cap
}

/// Rewrites the data size of leaf node `i` (a BIGDATA node whose run was
/// rewritten in place).
pub(crate) fn set_node_dsize(p: &mut [u8], i: usize, dsize: usize) {
    let off = ptr(p, i);
    put16(p, off, dsize & 0xffff);
    put16(p, off + 2, (dsize >> 16) & 0xffff);
}
