//! `MDB_page` and `MDB_node`: bounds-checked views of B+tree pages.

use super::{u16_at, u32_at, u64_at};
use crate::error::{Error, Result};

/// Size of the page header (`PAGEHDRSZ`).
pub const PAGE_HEADER_SIZE: usize = 16;
/// Size of a node header (`NODESIZE`).
pub const NODE_HEADER_SIZE: usize = 8;

/// Page flags (`mp_flags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFlags(pub u16);

impl PageFlags {
    /// A branch page: nodes point at child pages.
    pub const BRANCH: PageFlags = PageFlags(0x01);
    /// A leaf page: nodes hold keys and values.
    pub const LEAF: PageFlags = PageFlags(0x02);
    /// The first page of an overflow run.
    pub const OVERFLOW: PageFlags = PageFlags(0x04);
    /// A meta page.
    pub const META: PageFlags = PageFlags(0x08);
    /// A page modified by the running write transaction (never on disk).
    pub const DIRTY: PageFlags = PageFlags(0x10);
    /// A leaf of fixed-size keys packed without node headers (DUPFIXED).
    pub const LEAF2: PageFlags = PageFlags(0x20);
    /// A sub-page embedded in a leaf node's value (DUPSORT).
    pub const SUBP: PageFlags = PageFlags(0x40);
    /// A page freed and kept for reuse within the same transaction.
    pub const LOOSE: PageFlags = PageFlags(0x4000);
    /// A page that must not be spilled.
    pub const KEEP: PageFlags = PageFlags(0x8000);

    /// Whether every flag of `o` is set.
    pub const fn contains(self, o: PageFlags) -> bool {
        self.0 & o.0 == o.0
    }
}

/// Node flags (`mn_flags`) of a leaf node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeFlags(pub u16);

impl NodeFlags {
    /// The value lives in an overflow run; the node holds its page number.
    pub const BIGDATA: NodeFlags = NodeFlags(0x01);
    /// The value is an `MDB_db` record (named database or dup sub-database).
    pub const SUBDATA: NodeFlags = NodeFlags(0x02);
    /// The key has duplicates: a sub-page, or with SUBDATA a sub-database.
    pub const DUPDATA: NodeFlags = NodeFlags(0x04);

    /// Whether every flag of `o` is set.
    pub const fn contains(self, o: NodeFlags) -> bool {
        self.0 & o.0 == o.0
    }
}

/// A validated view of one page (or of a sub-page inside a leaf node).
///
/// Construction checks the header; [`Page::node`] checks each node against
/// the page bounds, so no accessor can read outside `bytes`.
#[derive(Clone, Copy, Debug)]
pub struct Page<'a> {
    bytes: &'a [u8],
    pgno: u64,
    flags: PageFlags,
    nkeys: usize,
}

impl<'a> Page<'a> {
    /// Views `bytes` as the tree page `pgno` (a branch, leaf or LEAF2 page,
    /// or a sub-page). `pgno` is only used to name the page in errors.
    pub fn new(bytes: &'a [u8], pgno: u64) -> Result<Page<'a>> {
        let bad = |what| Err(Error::corrupted(pgno, what));
        let (Some(flags), Some(lower), Some(upper)) =
            (u16_at(bytes, 10), u16_at(bytes, 12), u16_at(bytes, 14))
        else {
            return bad("page shorter than its header");
        };
        let flags = PageFlags(flags);
        let (lower, upper) = (lower as usize, upper as usize);
        if lower < PAGE_HEADER_SIZE || lower > upper || upper > bytes.len() {
            return bad("page bounds");
        }
        if flags.contains(PageFlags::BRANCH) == flags.contains(PageFlags::LEAF) {
            return bad("not a branch or leaf page");
        }
        Ok(Page {
            bytes,
            pgno,
            flags,
            nkeys: (lower - PAGE_HEADER_SIZE) >> 1,
        })
    }

    /// The page number this view was created for.
    #[inline]
    pub fn pgno(&self) -> u64 {
        self.pgno
    }
    /// The `mp_pgno` stored in the header.
    #[inline]
    pub fn stored_pgno(&self) -> u64 {
        u64_at(self.bytes, 0).unwrap_or(u64::MAX)
    }
    /// The page's raw bytes.
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// `mp_flags`.
    #[inline]
    pub fn flags(&self) -> PageFlags {
        self.flags
    }
    /// `mp_pad`: on a DUPFIXED sub-page, the size of each value.
    #[inline]
    pub fn pad(&self) -> u16 {
        u16_at(self.bytes, 8).unwrap_or(0)
    }
    /// Whether this is a branch page.
    #[inline]
    pub fn is_branch(&self) -> bool {
        self.flags.0 & PageFlags::BRANCH.0 != 0
    }
    /// Whether this is a leaf page (including LEAF2).
    #[inline]
    pub fn is_leaf(&self) -> bool {
        self.flags.0 & PageFlags::LEAF.0 != 0
    }
    /// Whether this is a LEAF2 page of packed fixed-size keys.
    #[inline]
    pub fn is_leaf2(&self) -> bool {
        self.flags.0 & PageFlags::LEAF2.0 != 0
    }
    /// Number of keys on the page (`NUMKEYS`).
    #[inline]
    pub fn len(&self) -> usize {
        self.nkeys
    }
    /// Whether the page has no keys.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.nkeys == 0
    }
    /// `mp_lower`.
    pub fn lower(&self) -> usize {
        PAGE_HEADER_SIZE + 2 * self.nkeys
    }
    /// `mp_upper`.
    pub fn upper(&self) -> usize {
        u16_at(self.bytes, 14).unwrap_or(0) as usize
    }

    /// Key `i` of a LEAF2 page whose keys are `ksize` bytes each.
    #[inline]
    pub fn leaf2_key(&self, i: usize, ksize: usize) -> Result<&'a [u8]> {
        // Checked: `ksize` comes from a record and may be anything.
        i.checked_mul(ksize)
            .and_then(|o| o.checked_add(PAGE_HEADER_SIZE))
            .and_then(|start| self.bytes.get(start..start.checked_add(ksize)?))
            .filter(|_| i < self.nkeys && ksize > 0)
            .ok_or(Error::corrupted(self.pgno, "LEAF2 key out of bounds"))
    }

    /// All keys of a LEAF2 page, packed.
    pub fn leaf2_keys(&self, ksize: usize) -> Result<&'a [u8]> {
        self.nkeys
            .checked_mul(ksize)
            .and_then(|n| {
                self.bytes
                    .get(PAGE_HEADER_SIZE..n.checked_add(PAGE_HEADER_SIZE)?)
            })
            .ok_or(Error::corrupted(self.pgno, "LEAF2 keys out of bounds"))
    }

    /// Node `i`, bounds-checked. On a leaf the node's inline value is
    /// checked too (or, for BIGDATA, its overflow page number).
    #[inline]
    pub fn node(&self, i: usize) -> Result<Node<'a>> {
        let bad = Error::corrupted(self.pgno, "node out of bounds");
        if i >= self.nkeys {
            return Err(bad);
        }
        let off = u16_at(self.bytes, PAGE_HEADER_SIZE + 2 * i).ok_or(bad.clone())? as usize;
        if off < self.lower() {
            return Err(bad);
        }
        let h = self
            .bytes
            .get(off..off + NODE_HEADER_SIZE)
            .ok_or(bad.clone())?;
        let lo = u16::from_le_bytes([h[0], h[1]]) as u64;
        let hi = u16::from_le_bytes([h[2], h[3]]) as u64;
        let flags = u16::from_le_bytes([h[4], h[5]]);
        let ksize = u16::from_le_bytes([h[6], h[7]]) as usize;
        let kstart = off + NODE_HEADER_SIZE;
        let key = self.bytes.get(kstart..kstart + ksize).ok_or(bad.clone())?;
        if self.is_branch() {
            let child = lo | (hi << 16) | ((flags as u64) << 32);
            return Ok(Node {
                key,
                flags: NodeFlags(0),
                value: &[],
                data_size: 0,
                child,
            });
        }
        let dsize = (lo | (hi << 16)) as usize;
        let flags = NodeFlags(flags);
        let vlen = if flags.contains(NodeFlags::BIGDATA) {
            8
        } else {
            dsize
        };
        let vstart = kstart + ksize;
        // `vlen` is a 32-bit size from the file: keep the end from wrapping.
        let vend = vstart.checked_add(vlen).ok_or(bad.clone())?;
        let value = self.bytes.get(vstart..vend).ok_or(bad)?;
        Ok(Node {
            key,
            flags,
            value,
            data_size: dsize,
            child: 0,
        })
    }
}

/// A node of a branch or leaf page.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    /// The key bytes.
    pub key: &'a [u8],
    /// `mn_flags` (leaf nodes only; zero on branch nodes).
    pub flags: NodeFlags,
    /// The inline value: the data itself, an `MDB_db` record, a sub-page,
    /// or with BIGDATA the 8-byte page number of the overflow run.
    pub value: &'a [u8],
    /// The value's size as stored (`NODEDSZ`); for BIGDATA, the size of the
    /// data in the overflow run.
    pub data_size: usize,
    /// On a branch node, the child page number.
    pub child: u64,
}

impl<'a> Node<'a> {
    /// The overflow run's first page number, for a BIGDATA node.
    pub fn overflow_pgno(&self) -> Option<u64> {
        if self.flags.contains(NodeFlags::BIGDATA) {
            u64_at(self.value, 0)
        } else {
            None
        }
    }
}

/// Number of pages in an overflow run, from its first page's header.
pub fn overflow_pages(first_page: &[u8]) -> Option<u32> {
    u32_at(first_page, 12)
}
