//! A file body handed to the stack by reference: windows of the file mapped into memory and
//! queued as shared bytes (`Stack::send_shared`), so its bytes go from the page cache to the
//! TUN in the kernel's one copy, never through a buffer of ours.
//!
//! Serving a 1 GiB file from tmpfs, reading it into the send buffer first (`pread`) was the
//! largest cost left in `serve`: the bytes crossed memory twice. Mapped, the device's write
//! is the only reader (about 25 → 29 Gbit/s through the TUN in `bench/serve.sh`'s setup).
//!
//! The pages are read by the kernel only: a file cut short under us makes that write fail
//! (`EFAULT`, and the driver resets that connection) where a read of ours would be killed by
//! SIGBUS. So this is only used when the driver gathers (`EventLoop::gathers`): a TUN with
//! offloads, no `-v`, `--pcap` or `--impair`, which would copy the bytes.

use std::fs::File;

use bytes::Bytes;
use memmap2::MmapOptions;

/// Bytes mapped at a time: one mapping per 2 MiB sent, and at most about the send buffer's
/// worth of the file and one window more held mapped.
const WINDOW: u64 = 2 << 20;

/// Bodies at least this long are mapped; a shorter one costs less to read (a mapping is two
/// system calls and a page fault per page).
pub const MIN_LEN: u64 = 256 << 10;

/// The window of a file body being queued.
#[derive(Debug, Default)]
pub struct Mapped {
    /// The file offset of `bytes`' first byte, and the bytes not queued yet.
    window: Option<(u64, Bytes)>,
    /// The system would not map this body: it is read instead.
    pub unavailable: bool,
}

/// Why a window could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// The file now ends before the bytes promised: the reply cannot be kept.
    Short,
    /// The system would not map it (out of mappings or memory, a file system without
    /// mmap): the body is read instead.
    Unavailable,
}
use MapError::{Short, Unavailable};

impl Mapped {
    /// The next bytes of the file from `at` (at most `left` of them), mapping a new window
    /// when the last one is used up; `Short` when the file now ends before them.
    pub fn next(&mut self, file: &File, at: u64, left: u64) -> Result<Bytes, MapError> {
        if let Some((start, bytes)) = &self.window {
            if *start == at && !bytes.is_empty() {
                return Ok(bytes.slice(..bytes.len().min(clamp(left))));
            }
        }
        let page = page_size();
        let base = at - at % page;
        let end = (base + WINDOW).min(at + left);
        // The file may have been cut since its length was promised: never map past its end.
        let file_len = file.metadata().map_err(|_| Unavailable)?.len();
        if file_len < end {
            return Err(Short);
        }
        let len = usize::try_from(end - base).map_err(|_| Unavailable)?;
        // SAFETY: the mapping is read only by the kernel, when the device writes it (see the
        // module's comment): a change to the file under it is what a client of sendfile
        // would see, and a cut makes that write fail, never a read of ours.
        // Populated: the page tables are filled in one go, not a fault per few pages when
        // the device's write first touches them (7% more throughput).
        let map = unsafe {
            MmapOptions::new()
                .offset(base)
                .len(len)
                .populate()
                .map(file)
        }
        .map_err(|_| Short)?;
        let skip = usize::try_from(at - base).map_err(|_| Short)?;
        let bytes = Bytes::from_owner(map).slice(skip..);
        self.window = Some((at, bytes.clone()));
        Ok(bytes)
    }

    /// `n` bytes from the window were queued.
    pub fn advance(&mut self, n: usize) {
        if let Some((start, bytes)) = &mut self.window {
            let _ = bytes.split_to(n.min(bytes.len()));
            *start += n as u64;
            if bytes.is_empty() {
                self.window = None;
            }
        }
    }
}

fn clamp(left: u64) -> usize {
    usize::try_from(left).unwrap_or(usize::MAX)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}
