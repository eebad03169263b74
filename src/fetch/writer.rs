//! Output off the event loop: one thread per download writes the body, decodes it
//! (`--compressed`), syncs and renames it into place; the loop never waits for it.
//!
//! The loop hands the thread owned buffers through a queue bounded in bytes
//! ([`QUEUE_BYTES`]) and reads from the connection only as much as the queue has room for
//! ([`Writer::room`]). What it does not read stays in the TCP receive buffer, so a slow reader
//! of standard output, a slow disk or a long `fsync` closes the window we advertise instead of
//! stalling the loop while the sender fills a window we no longer drain (RFC 9293 §3.8.6: what
//! we advertised we must accept). The thread wakes the loop when room frees up and when it is
//! done; its one result (bytes saved, or the error) is taken with [`Writer::poll_done`].
//!
//! Dropping a `Writer` before it is done abandons the download: the thread stops at its next
//! buffer, and the temporary file is removed at once by the loop's side, so it goes even if
//! the process exits while the thread is still blocked in a write.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use crate::http::encoding::{Coding, Counted, Decoder};
use crate::http::{Output, OutputError};

/// The body's way to its destination: decoded (or passed through), counted, then written.
pub type Body = Decoder<Counted<Output>>;

/// Called by the thread when the loop should look again; wakes the event loop.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// Bytes a download may have queued for its writer. Data the queue cannot take waits in the
/// TCP receive buffer (and closes the window), so this only has to cover the writer's jitter:
/// half a MiB keeps a 14 Gbit/s download fed while holding the client's memory near what it
/// was before output moved off the loop (2 MiB here cost ~3 MiB of peak RSS, measured).
pub const QUEUE_BYTES: usize = 512 << 10;
/// Bytes gathered before a buffer is queued (fewer at the end of each read from the
/// connection, so a trickling body still streams).
const CHUNK_BYTES: usize = 64 << 10;
/// Emptied buffers kept for reuse instead of being freed.
const SPARE_BUFFERS: usize = 4;

/// Why the writer gave up.
#[derive(Debug)]
pub enum WriteFailure {
    /// Writing (or decoding: the decoder runs in the writer) failed.
    Write(io::Error),
    /// The body was complete but could not be synced or moved into place.
    Commit(OutputError),
}

/// The loop's side of one download's writer thread.
pub struct Writer {
    shared: Arc<Shared>,
    /// Bytes written by the loop and not queued yet.
    staging: Vec<u8>,
    /// The temporary file to remove if the download is abandoned.
    temp: Option<PathBuf>,
    /// The thread's result, once taken.
    done: bool,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signals the thread: a buffer was queued, the body is complete, or it was abandoned.
    work: Condvar,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Vec<u8>>,
    /// Bytes queued or being written.
    queued: usize,
    /// The loop found no room and waits to be woken when there is.
    waiting_for_room: bool,
    /// Everything is queued: finish the decoder, sync and rename.
    complete: bool,
    abandoned: bool,
    result: Option<Result<u64, WriteFailure>>,
    spare: Vec<Vec<u8>>,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic in the other thread leaves the state consistent (plain fields), so go on.
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Writer {
    /// Starts the writer thread for `output`, decoding `coding` on the way; `wake` is called
    /// whenever the loop should look.
    pub fn spawn(output: Output, coding: Coding, wake: Wake) -> io::Result<Writer> {
        let temp = output.discarded_on_failure().map(|p| p.to_owned());
        let body = Decoder::new(coding, Counted::new(output));
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("tunstack-writer".into())
                .spawn(move || write_out(&shared, body, &wake))?
        };
        Ok(Writer {
            shared,
            staging: Vec::new(),
            temp,
            done: false,
            thread: Some(thread),
        })
    }

    /// Bytes the loop may write now without exceeding the queue's bound. When it is zero the
    /// thread wakes the loop once there is room again.
    pub fn room(&mut self) -> usize {
        let mut state = lock(&self.shared);
        let room = QUEUE_BYTES.saturating_sub(state.queued + self.staging.len());
        state.waiting_for_room = room == 0;
        room
    }

    /// Hands what was written so far to the thread.
    pub fn send(&mut self) {
        if self.staging.is_empty() {
            return;
        }
        let mut state = lock(&self.shared);
        let mut next = state.spare.pop().unwrap_or_default();
        std::mem::swap(&mut next, &mut self.staging);
        state.queued += next.len();
        state.queue.push_back(next);
        drop(state);
        self.shared.work.notify_one();
    }

    /// The body is complete: the thread writes what is queued, finishes decoding, syncs and
    /// moves the file into place, then reports through [`Writer::poll_done`].
    pub fn finish(&mut self) {
        self.send();
        lock(&self.shared).complete = true;
        self.shared.work.notify_one();
    }

    /// The thread's result once it has one: the decoded bytes saved, or why it failed (which
    /// may come before `finish`). `None` while it is still working.
    pub fn poll_done(&mut self) -> Option<Result<u64, WriteFailure>> {
        if self.done {
            return None;
        }
        let result = lock(&self.shared).result.take()?;
        self.done = true;
        if let Some(thread) = self.thread.take() {
            // It stored its result as its last act: this join returns at once.
            let _ = thread.join();
        }
        Some(result)
    }
}

impl Write for Writer {
    /// Never blocks and never refuses: the caller keeps to [`Writer::room`].
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.staging.capacity() == 0 {
            self.staging.reserve(CHUNK_BYTES);
        }
        self.staging.extend_from_slice(bytes);
        if self.staging.len() >= CHUNK_BYTES {
            self.send();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send();
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = lock(&self.shared);
        if state.result.as_ref().is_some_and(|r| r.is_ok()) {
            // Saved after all; nothing to undo.
            return;
        }
        state.abandoned = true;
        state.queue.clear();
        drop(state);
        self.shared.work.notify_one();
        // The thread may be blocked in a write for a long time (a stalled pipe, a slow disk)
        // and the process may exit first: remove the temporary file now. If the thread was
        // renaming it at this moment, either the rename won (and the file is complete) or it
        // finds the file gone and fails.
        if let Some(temp) = &self.temp {
            let _ = std::fs::remove_file(temp);
        }
        // Not joined: the thread ends by itself at its next buffer.
    }
}

/// The thread: writes queued buffers in order until the body is complete (then finishes and
/// commits) or the download is abandoned (then drops the output, which removes its temporary
/// file or, for `-c`, keeps what was written).
fn write_out(shared: &Shared, mut body: Body, wake: &Wake) {
    loop {
        let next = {
            let mut state = lock(shared);
            loop {
                if state.abandoned {
                    return;
                }
                if let Some(buffer) = state.queue.pop_front() {
                    break Some(buffer);
                }
                if state.complete {
                    break None;
                }
                state = shared.work.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        };
        let Some(mut buffer) = next else {
            let result = body
                .finish()
                .map_err(WriteFailure::Write)
                .and_then(|counted| {
                    let bytes = counted.count;
                    counted
                        .inner
                        .commit()
                        .map(|()| bytes)
                        .map_err(WriteFailure::Commit)
                });
            lock(shared).result = Some(result);
            wake();
            return;
        };
        let written = body.write_all(&buffer);
        let mut state = lock(shared);
        state.queued -= buffer.len();
        if state.spare.len() < SPARE_BUFFERS && buffer.capacity() <= 2 * CHUNK_BYTES {
            buffer.clear();
            state.spare.push(buffer);
        }
        if let Err(error) = written {
            state.result = Some(Err(WriteFailure::Write(error)));
            drop(state);
            // Dropping the output removes the temporary file (a `-c` file keeps its bytes).
            drop(body);
            wake();
            return;
        }
        let wanted = state.waiting_for_room && QUEUE_BYTES - state.queued >= CHUNK_BYTES;
        if wanted {
            state.waiting_for_room = false;
        }
        drop(state);
        if wanted {
            wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    use super::*;
    use crate::http::OutputTarget;

    fn scratch(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tunstack-writer-test-{}-{label}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        dir
    }

    fn spawn_for(target: &std::path::Path, wake: Wake) -> Writer {
        let output = Output::create(&OutputTarget::Path(target.to_owned())).unwrap();
        Writer::spawn(output, Coding::Identity, wake).unwrap()
    }

    /// A wake that counts, and a channel to wait on it (bounded).
    fn counting_wake() -> (Wake, Arc<AtomicUsize>, mpsc::Receiver<()>) {
        let count = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let seen = Arc::clone(&count);
        let wake: Wake = Arc::new(move || {
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = tx.lock().unwrap().send(());
        });
        (wake, count, rx)
    }

    fn wait_done(writer: &mut Writer, woken: &mpsc::Receiver<()>) -> Result<u64, WriteFailure> {
        loop {
            if let Some(result) = writer.poll_done() {
                return result;
            }
            woken
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("the writer wakes the loop when it is done");
        }
    }

    #[test]
    fn the_file_appears_complete_only_after_finish() {
        let dir = scratch("complete");
        let target = dir.join("f");
        let (wake, _, woken) = counting_wake();
        let mut writer = spawn_for(&target, wake);
        let data: Vec<u8> = (0..3 * CHUNK_BYTES + 5).map(|i| (i % 253) as u8).collect();
        for piece in data.chunks(1448) {
            assert!(writer.room() >= piece.len());
            writer.write_all(piece).unwrap();
        }
        writer.send();
        assert!(!target.exists(), "no file before the body is complete");
        writer.finish();
        assert_eq!(wait_done(&mut writer, &woken).unwrap(), data.len() as u64);
        assert_eq!(fs::read(&target).unwrap(), data);
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_abandoned_download_leaves_no_temporary_file() {
        let dir = scratch("abandon");
        let target = dir.join("f");
        let (wake, _, _woken) = counting_wake();
        let mut writer = spawn_for(&target, wake);
        writer.write_all(&vec![7; CHUNK_BYTES * 2]).unwrap();
        drop(writer);
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            0,
            "the temporary file goes with the writer"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_write_error_comes_back_without_finish_and_wakes_the_loop() {
        let (wake, _, woken) = counting_wake();
        let output = Output::create(&OutputTarget::Path(PathBuf::from("/dev/full"))).unwrap();
        let mut writer = Writer::spawn(output, Coding::Identity, wake).unwrap();
        // More than the output's own buffer holds, so the error shows before `finish`.
        writer.write_all(&vec![0; 1 << 20]).unwrap();
        match wait_done(&mut writer, &woken) {
            Err(WriteFailure::Write(e)) => assert_eq!(e.raw_os_error(), Some(libc::ENOSPC)),
            other => panic!("expected ENOSPC, got {other:?}"),
        }
    }

    #[test]
    fn room_is_bounded_and_the_loop_is_woken_when_it_frees() {
        // A pipe nobody reads yet: the thread blocks in its first write.
        let mut fds = [0; 2];
        // SAFETY: pipe(2) fills the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both descriptors are fresh and owned here.
        let (read_end, write_end) = unsafe {
            use std::os::fd::FromRawFd;
            (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1]))
        };
        use std::fs::File;
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let fifo_path = PathBuf::from(format!("/proc/self/fd/{}", write_end.as_raw_fd()));
        let output = Output::create(&OutputTarget::Path(fifo_path)).unwrap();
        drop(write_end);
        let (wake, _, woken) = counting_wake();
        let mut writer = Writer::spawn(output, Coding::Identity, wake).unwrap();
        let mut offered = 0;
        while writer.room() > 0 {
            let n = writer.room().min(64 << 10);
            writer.write_all(&vec![1; n]).unwrap();
            writer.send();
            offered += n;
        }
        // The queue's bound, plus what the thread moved into the pipe's buffer before it
        // blocked.
        assert!(
            (QUEUE_BYTES..QUEUE_BYTES + (1 << 20)).contains(&offered),
            "{offered}"
        );
        // The reader drains: room frees and the loop hears of it.
        let reader = thread::spawn(move || {
            let mut read_end = read_end;
            let mut all = Vec::new();
            read_end.read_to_end(&mut all).unwrap();
            all.len()
        });
        woken
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("woken when room frees");
        assert!(writer.room() > 0);
        writer.finish();
        assert_eq!(wait_done(&mut writer, &woken).unwrap(), offered as u64);
        assert_eq!(reader.join().unwrap(), offered);
    }
}
