//! The B+tree read logic: page access, search and cursor movement.
//!
//! Nothing here knows where pages come from: a [`PageSource`] hands out page
//! bytes by number, so the same code reads the memory map, a snapshot being
//! written, or pages fetched from elsewhere.

pub mod cmp;
mod cursor;
mod levels;
mod pagebuf;
mod prefetch;
mod tree;
pub mod write;

pub use cmp::Cmp;
pub use cursor::{get, Cursor, CursorOp, Entry};
pub use tree::{Tree, TreeKind};

use crate::error::{Error, Result};
use crate::format::{overflow_pages, Page, PageFlags, NODE_HEADER_SIZE, PAGE_HEADER_SIZE};

/// Where a reader's pages come from.
///
/// Implementations must return the same bytes for the same page for as long
/// as the borrow of the source lives: cursors hold on to page slices.
pub trait PageSource {
    /// The environment's page size.
    fn page_size(&self) -> usize;

    /// The bytes of `count` consecutive pages starting at `pgno`, or
    /// [`Error::Corrupted`] if they are outside the snapshot.
    fn pages(&self, pgno: u64, count: u64) -> Result<&[u8]>;

    /// One tree page, validated: in bounds, with its own number in its
    /// header, and a branch or leaf.
    #[inline]
    fn tree_page(&self, pgno: u64) -> Result<Page<'_>> {
        let bytes = self.pages(pgno, 1)?;
        let page = Page::new(bytes, pgno)?;
        if page.stored_pgno() != pgno {
            return Err(Error::corrupted(pgno, "page number in header differs"));
        }
        Ok(page)
    }

    /// The `size` bytes of a value stored in the overflow run at `pgno`.
    fn overflow_value(&self, pgno: u64, size: usize) -> Result<&[u8]> {
        let first = self.pages(pgno, 1)?;
        let flags = crate::format::u16_at(first, 10).unwrap_or(0);
        if flags & PageFlags::OVERFLOW.0 == 0 || crate::format::u64_at(first, 0) != Some(pgno) {
            return Err(Error::corrupted(pgno, "not an overflow page"));
        }
        let count = overflow_pages(first).unwrap_or(0) as u64;
        // A source with a zero page size must not divide by zero below.
        let ps = self.page_size().max(1) as u64;
        if count == 0
            || (size as u64)
                > count
                    .saturating_mul(ps)
                    .saturating_sub(PAGE_HEADER_SIZE as u64)
        {
            return Err(Error::corrupted(
                pgno,
                "overflow run shorter than its value",
            ));
        }
        // Map only the pages the value needs: the run's header may claim more.
        let need = (PAGE_HEADER_SIZE as u64 + size as u64).div_ceil(ps);
        let run = self.pages(pgno, need)?;
        PAGE_HEADER_SIZE
            .checked_add(size)
            .and_then(|end| run.get(PAGE_HEADER_SIZE..end))
            .ok_or(Error::corrupted(pgno, "overflow value out of bounds"))
    }
}

/// The offset and header of node `i` (which must be below the page's key
/// count) of a page whose node pointers end at `lower`, or `None` if the
/// pointer or the header is out of bounds.
#[inline(always)]
pub(crate) fn node_header(bytes: &[u8], lower: usize, i: usize) -> Option<(usize, &[u8])> {
    let p = PAGE_HEADER_SIZE + 2 * i;
    let ptr = bytes.get(p..p + 2)?;
    let off = u16::from_le_bytes([ptr[0], ptr[1]]) as usize;
    if off < lower {
        return None;
    }
    Some((off, bytes.get(off..off + NODE_HEADER_SIZE)?))
}

/// The key of node `i` (see [`node_header`]), or `None` if the node is out
/// of bounds.
#[inline(always)]
pub(crate) fn node_key(bytes: &[u8], lower: usize, i: usize) -> Option<&[u8]> {
    let (off, h) = node_header(bytes, lower, i)?;
    let ks = u16::from_le_bytes([h[6], h[7]]) as usize;
    let start = off + NODE_HEADER_SIZE;
    bytes.get(start..start + ks)
}
