//! The levels of a root-to-leaf path, on the stack. All `unsafe` of the
//! path lives here: a path is made on every put and delete, and zeroing
//! its slots first, which only a later push fills, was a measurable share
//! of a small put.

use core::mem::MaybeUninit;

/// A list of at most `N` items on the stack (LMDB's cursor keeps the same
/// fixed-size stack, `mc_pg`/`mc_ki`). Only the first `len` slots are
/// initialised.
pub(crate) struct Levels<T: Copy, const N: usize> {
    len: usize,
    items: [MaybeUninit<T>; N],
}

impl<T: Copy, const N: usize> Default for Levels<T, N> {
    #[inline]
    fn default() -> Self {
        Levels {
            len: 0,
            items: [MaybeUninit::uninit(); N],
        }
    }
}

impl<T: Copy, const N: usize> core::ops::Deref for Levels<T, N> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: the first `len` slots are initialised (every method
        // keeps that so), `len <= N`, and `MaybeUninit<T>` has `T`'s layout.
        unsafe { core::slice::from_raw_parts(self.items.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Copy, const N: usize> core::ops::DerefMut for Levels<T, N> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes this the only borrow.
        unsafe { core::slice::from_raw_parts_mut(self.items.as_mut_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Copy, const N: usize> Levels<T, N> {
    /// Appends `v`; false when the list is full.
    #[inline]
    pub(crate) fn push(&mut self, v: T) -> bool {
        let Some(slot) = self.items.get_mut(self.len) else {
            return false;
        };
        *slot = MaybeUninit::new(v);
        self.len += 1;
        true
    }

    /// Inserts `v` at `i`; false when the list is full or `i` is past its end.
    #[inline]
    pub(crate) fn insert(&mut self, i: usize, v: T) -> bool {
        if self.len == N || i > self.len {
            return false;
        }
        self.items.copy_within(i..self.len, i + 1);
        self.items[i] = MaybeUninit::new(v);
        self.len += 1;
        true
    }

    /// Removes the item at `i`, if there is one.
    pub(crate) fn remove(&mut self, i: usize) {
        if i < self.len {
            self.items.copy_within(i + 1..self.len, i);
            self.len -= 1;
        }
    }

    /// Keeps the first `n` items.
    pub(crate) fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Removes every item.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Levels;

    #[test]
    fn pushes_inserts_and_removes_within_capacity() {
        let mut l: Levels<u64, 3> = Levels::default();
        assert!(l.is_empty());
        assert!(l.push(1) && l.push(3));
        assert!(l.insert(1, 2));
        assert_eq!(&l[..], &[1, 2, 3]);
        assert!(!l.push(4), "full");
        assert!(!l.insert(0, 0), "full");
        l.remove(0);
        assert_eq!(&l[..], &[2, 3]);
        assert!(!l.insert(3, 9), "past the end");
        l[1] = 7;
        l.truncate(1);
        assert_eq!(&l[..], &[2]);
        l.clear();
        assert!(l.is_empty());
    }
}
