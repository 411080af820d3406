//! The content of a regular file: a sparse map of fixed-size pages.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use vfs_core::ErrorKind;

use super::usage::Usage;

/// The unit of allocation, as tmpfs's: a page is allocated when first written and counts
/// as `PAGE_SIZE` bytes against the byte limit and as 8 blocks in `stat`, however little
/// of it holds data.
pub(crate) const PAGE_SIZE: usize = 4096;
const PAGE: u64 = PAGE_SIZE as u64;

/// Whole pages written at once are stored in shared allocations of up to this many
/// pages: one allocation instead of one per page, which is most of a large write's cost
/// (a 1 MiB write made 256). A page of such a run that is rewritten in part is copied
/// out on its own, so a run's memory goes back only once none of its pages is left; a
/// run stays small so that holes punched between surviving pages keep little alive.
const RUN_PAGES: usize = 16;

/// The largest file size, as Linux's `MAX_LFS_FILESIZE`.
pub(crate) const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// Holes are served from here, so reading a hole allocates nothing.
static ZEROS: [u8; PAGE_SIZE] = [0; PAGE_SIZE];

/// A file's bytes.
///
/// Pages are `Bytes` so a read inside one page is a reference-counted slice rather than a
/// copy; a write into a page a reader still holds copies it first, so readers keep what
/// they read. A page stores only up to its last written byte (a 10-byte file holds 10
/// bytes, not 4096) and never extends past `size`, so growing the file later exposes
/// zeros, not stale data. Page 0 lives outside the map because most files are small and
/// an empty `BTreeMap` costs nothing while a one-entry one allocates a whole node.
#[derive(Default)]
pub(crate) struct FileData {
    size: u64,
    head: Option<Bytes>,
    tail: BTreeMap<u64, Bytes>,
    pages: u64,
}

impl FileData {
    /// A file holding `data`, its pages reserved against `usage` (`None` if that would
    /// pass the byte limit).
    pub(crate) fn from_slice(usage: &Usage, data: &[u8]) -> Option<FileData> {
        let pages = (data.len() as u64).div_ceil(PAGE);
        if !usage.reserve_pages(pages) {
            return None;
        }
        let mut file = FileData {
            size: data.len() as u64,
            pages,
            ..FileData::default()
        };
        for (idx, chunk) in data.chunks(PAGE_SIZE).enumerate() {
            file.insert(idx as u64, Bytes::copy_from_slice(chunk));
        }
        Some(file)
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Allocated 512-byte blocks.
    pub(crate) fn blocks(&self) -> u64 {
        self.pages * (PAGE / 512)
    }

    /// Allocated pages.
    pub(crate) fn pages(&self) -> u64 {
        self.pages
    }

    fn page(&self, idx: u64) -> Option<&Bytes> {
        if idx == 0 {
            self.head.as_ref()
        } else {
            self.tail.get(&idx)
        }
    }

    fn page_mut(&mut self, idx: u64) -> Option<&mut Bytes> {
        if idx == 0 {
            self.head.as_mut()
        } else {
            self.tail.get_mut(&idx)
        }
    }

    fn insert(&mut self, idx: u64, page: Bytes) {
        if idx == 0 {
            self.head = Some(page);
        } else {
            self.tail.insert(idx, page);
        }
    }

    /// The whole content, without copying when it is one page.
    pub(crate) fn read_all(&self) -> Result<Bytes, ErrorKind> {
        if let (Some(head), true) = (&self.head, self.tail.is_empty()) {
            if head.len() as u64 == self.size {
                return Ok(head.clone());
            }
        }
        self.read(0, usize::try_from(self.size).unwrap_or(usize::MAX))
    }

    /// Up to `len` bytes at `offset`; holes read as zeros.
    pub(crate) fn read(&self, offset: u64, len: usize) -> Result<Bytes, ErrorKind> {
        if offset >= self.size || len == 0 {
            return Ok(Bytes::new());
        }
        let end = self.size.min(offset.saturating_add(len as u64));
        // Bounded by `len`, so it fits a usize.
        let n = (end - offset) as usize;
        let first = offset / PAGE;
        if first == (end - 1) / PAGE {
            let start = (offset % PAGE) as usize;
            match self.page(first) {
                Some(page) if page.len() >= start + n => return Ok(page.slice(start..start + n)),
                None => return Ok(Bytes::from_static(&ZEROS[..n])),
                Some(_) => {}
            }
        }
        let mut out = Vec::new();
        out.try_reserve_exact(n)
            .map_err(|_| ErrorKind::OutOfMemory)?;
        let copy_page = |out: &mut Vec<u8>, idx: u64, page: &Bytes| {
            let page_start = idx * PAGE;
            let from = offset.max(page_start);
            let to = end.min(page_start + page.len() as u64);
            if from >= to {
                return;
            }
            // Holes before this page's data read as zeros.
            out.resize((from - offset) as usize, 0);
            out.extend_from_slice(&page[(from - page_start) as usize..(to - page_start) as usize]);
        };
        if first == 0 {
            if let Some(head) = &self.head {
                copy_page(&mut out, 0, head);
            }
        }
        let last = (end - 1) / PAGE;
        if last >= 1 {
            for (&idx, page) in self.tail.range(first.max(1)..=last) {
                copy_page(&mut out, idx, page);
            }
        }
        out.resize(n, 0);
        Ok(Bytes::from(out))
    }

    /// Writes `data` at `offset`, allocating pages as needed. Stops early when the byte
    /// limit is reached and returns how much it wrote; `ENOSPC` if that is nothing.
    /// The caller has checked that the write stays below [`MAX_FILE_SIZE`].
    pub(crate) fn write(
        &mut self,
        usage: &Usage,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, ErrorKind> {
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done as u64;
            let idx = pos / PAGE;
            let at = (pos % PAGE) as usize;
            if at == 0 && data.len() - done >= PAGE_SIZE {
                let (run, full) = self.store_run(usage, idx, &data[done..]);
                done += run;
                if full {
                    break;
                }
                continue;
            }
            let n = (PAGE_SIZE - at).min(data.len() - done);
            let chunk = &data[done..done + n];
            match self.page_mut(idx) {
                Some(page) => write_into(page, at, chunk),
                None => {
                    if !usage.reserve_pages(1) {
                        break;
                    }
                    let mut fresh = Vec::with_capacity(at + n);
                    fresh.resize(at, 0);
                    fresh.extend_from_slice(chunk);
                    self.insert(idx, Bytes::from(fresh));
                    self.pages += 1;
                }
            }
            done += n;
        }
        if done == 0 && !data.is_empty() {
            return Err(ErrorKind::NoSpace);
        }
        self.size = self.size.max(offset + done as u64);
        Ok(done)
    }

    /// Stores the whole pages at the start of `data` (up to [`RUN_PAGES`]) as pages
    /// `first`, ... in one allocation, replacing what they held. Returns the bytes stored
    /// and whether the byte limit stopped it.
    fn store_run(&mut self, usage: &Usage, first: u64, data: &[u8]) -> (usize, bool) {
        let wanted = (data.len() / PAGE_SIZE).min(RUN_PAGES);
        let mut run = 0;
        let mut full = false;
        while run < wanted {
            if self.page(first + run as u64).is_none() {
                if !usage.reserve_pages(1) {
                    full = true;
                    break;
                }
                self.pages += 1;
            }
            run += 1;
        }
        let stored = Bytes::copy_from_slice(&data[..run * PAGE_SIZE]);
        for page in 0..run {
            let at = page * PAGE_SIZE;
            self.insert(first + page as u64, stored.slice(at..at + PAGE_SIZE));
        }
        (run * PAGE_SIZE, full)
    }

    /// Truncates or extends to `len`. Extending allocates nothing: the new range is a hole.
    pub(crate) fn set_len(&mut self, usage: &Usage, len: u64) {
        if len < self.size {
            let keep = len.div_ceil(PAGE);
            let mut freed = 0;
            if keep == 0 && self.head.take().is_some() {
                freed += 1;
            }
            let dropped = self.tail.split_off(&keep.max(1));
            freed += dropped.len() as u64;
            drop(dropped);
            self.pages -= freed;
            usage.release_pages(freed);
            let cut = (len % PAGE) as usize;
            if cut != 0 {
                if let Some(page) = self.page_mut(len / PAGE) {
                    // Drop the stale tail so a later extension reads zeros.
                    page.truncate(cut);
                }
            }
        }
        self.size = len;
    }

    /// Zeroes `len` bytes at `offset` (within the size, which stays): pages the range
    /// covers go back to being holes, partly covered ones are zeroed in place.
    pub(crate) fn punch_hole(&mut self, usage: &Usage, offset: u64, len: u64) {
        let end = offset.saturating_add(len).min(self.size);
        if offset >= end {
            return;
        }
        let (first, last) = (offset / PAGE, (end - 1) / PAGE);
        // Only pages that exist: a hole of a terabyte costs nothing to walk.
        // The tail holds pages 1 and up: a hole within the first page has none of them.
        let mut present: Vec<u64> = if last >= 1 {
            self.tail
                .range(first.max(1)..=last)
                .map(|(k, _)| *k)
                .collect()
        } else {
            Vec::new()
        };
        if first == 0 && self.head.is_some() {
            present.insert(0, 0);
        }
        let mut freed = 0;
        for idx in present {
            let start = idx * PAGE;
            let from = (offset.max(start) - start) as usize;
            let to = (end.min(start + PAGE) - start) as usize;
            let Some(page) = self.page_mut(idx) else {
                continue;
            };
            if from == 0 && to >= page.len() {
                if idx == 0 {
                    self.head = None;
                } else {
                    self.tail.remove(&idx);
                }
                freed += 1;
            } else if from < page.len() {
                let zeros = vec![0; to.min(page.len()) - from];
                write_into(page, from, &zeros);
            }
        }
        self.pages -= freed;
        usage.release_pages(freed);
    }

    /// Replaces the content with `other`'s and releases the old pages. Returns the old
    /// content so the caller can free it after letting go of its locks.
    pub(crate) fn replace(&mut self, usage: &Usage, other: FileData) -> FileData {
        usage.release_pages(self.pages);
        std::mem::replace(self, other)
    }
}

/// Writes `chunk` at `at` within one page, in place when no reader shares the page.
fn write_into(page: &mut Bytes, at: usize, chunk: &[u8]) {
    let end = at + chunk.len();
    if at == 0 && end >= page.len() {
        // Everything the page held is overwritten: no need to keep it.
        *page = Bytes::copy_from_slice(chunk);
        return;
    }
    let mut buf = match std::mem::take(page).try_into_mut() {
        Ok(unique) => unique,
        Err(shared) => {
            let mut copy = BytesMut::with_capacity(shared.len().max(end));
            copy.extend_from_slice(&shared);
            copy
        }
    };
    if buf.len() < at {
        buf.resize(at, 0);
    }
    if buf.len() < end {
        buf.truncate(at);
        buf.extend_from_slice(chunk);
    } else {
        buf[at..end].copy_from_slice(chunk);
    }
    *page = buf.freeze();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    #[test]
    fn whole_page_runs_read_back_and_rewrites_of_one_page_leave_the_others() {
        let usage = Usage::new(None, None);
        let mut file = FileData::default();
        // Starts mid-page, spans more than one run, ends mid-page.
        let data = pattern(100 + RUN_PAGES * PAGE_SIZE * 2 + 700, 1);
        assert_eq!(file.write(&usage, 4000, &data), Ok(data.len()));
        let pages = (4000 + data.len() as u64).div_ceil(PAGE);
        assert_eq!(file.pages(), pages);
        assert_eq!(usage.bytes(), pages * PAGE);
        let mut expected = vec![0; 4000];
        expected.extend_from_slice(&data);
        assert_eq!(file.read(0, expected.len() + 10).unwrap(), expected);

        // Part of one page of a run, then a whole page of it.
        let patch = pattern(10, 2);
        file.write(&usage, 3 * PAGE + 5, &patch).unwrap();
        expected[3 * PAGE_SIZE + 5..3 * PAGE_SIZE + 15].copy_from_slice(&patch);
        let page = pattern(PAGE_SIZE, 3);
        file.write(&usage, 4 * PAGE, &page).unwrap();
        expected[4 * PAGE_SIZE..5 * PAGE_SIZE].copy_from_slice(&page);
        assert_eq!(file.read(0, expected.len()).unwrap(), expected);
        assert_eq!(file.pages(), pages);
    }

    #[test]
    fn a_run_stops_at_the_byte_limit_with_what_fit() {
        let usage = Usage::new(Some(3 * PAGE), None);
        let mut file = FileData::default();
        let data = pattern(8 * PAGE_SIZE, 4);
        assert_eq!(file.write(&usage, 0, &data), Ok(3 * PAGE_SIZE));
        assert_eq!(file.size(), 3 * PAGE);
        assert_eq!(file.read(0, data.len()).unwrap(), data[..3 * PAGE_SIZE]);
        // Rewriting what exists needs no new page; past it there is no room.
        assert_eq!(file.write(&usage, 0, &data[..PAGE_SIZE]), Ok(PAGE_SIZE));
        assert_eq!(
            file.write(&usage, 3 * PAGE, &data[..PAGE_SIZE]),
            Err(ErrorKind::NoSpace)
        );
    }
}
