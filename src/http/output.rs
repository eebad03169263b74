//! Where a download's body goes: standard output, or a file that appears only when complete.
//!
//! A file download is written to a temporary file next to the target and renamed over it on
//! [`Output::commit`], after flushing and `fsync`. Until then an existing target is untouched,
//! and dropping an uncommitted [`Output`] deletes the temporary file, so a failed or interrupted
//! download never leaves a partial file under the requested name. This is the one part of
//! [`crate::http`] that does I/O.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use percent_encoding::percent_decode_str;
use url::Url;

/// Write buffer size: large writes keep syscalls rare when the network delivers small chunks.
pub const OUTPUT_BUFFER_BYTES: usize = 256 * 1024;
/// Pieces at least this big skip the buffer: copying them first would only cost a pass over
/// the data (with offloads the stack hands over hundreds of KiB at a time).
const DIRECT_WRITE_BYTES: usize = 64 * 1024;
/// Longest file name Linux file systems accept (NAME_MAX).
const NAME_MAX: usize = 255;
/// Bytes of the target's name kept in the temporary name, leaving room for the decorations.
const TEMP_NAME_STEM_MAX: usize = 200;
/// Attempts at finding an unused temporary name before giving up.
const TEMP_NAME_ATTEMPTS: u32 = 64;

/// Distinguishes temporary files created by this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Why the output could not be prepared or saved.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The path cannot name a file (e.g. `/` or `dir/..`).
    #[error("{}: not a file name", .0.display())]
    NotAFile(PathBuf),
    /// The target is an existing directory; renaming over it would fail late or surprise.
    #[error("{} is a directory", .0.display())]
    IsDirectory(PathBuf),
    /// The temporary file could not be created next to the target.
    #[error("cannot create a temporary file in {}: {source}", dir.display())]
    CreateTemp {
        /// The directory it was to be created in.
        dir: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Flushing, syncing or renaming into place failed.
    #[error("cannot save {}: {source}", path.display())]
    Commit {
        /// The target path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Flushing standard output failed (e.g. a closed pipe).
    #[error("cannot write to standard output: {0}")]
    Stdout(#[source] io::Error),
    /// Writing the body to a file failed (e.g. a full disk).
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The target path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl OutputError {
    /// Writing the body to `target` failed with `source`.
    pub fn writing(target: &OutputTarget, source: io::Error) -> OutputError {
        match target {
            OutputTarget::Stdout => OutputError::Stdout(source),
            OutputTarget::Path(path) => OutputError::Write {
                path: path.clone(),
                source,
            },
        }
    }
}

/// Where the user asked the body to go (`-o`). The command line parses `-o` straight into this
/// (through [`FromStr`]), so there is one type for it from clap to the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    /// `-o -`: stream to standard output. Bytes written there cannot be taken back, so a failed
    /// download may have printed part of the body.
    Stdout,
    /// A file path, written under a temporary name and renamed into place when complete.
    Path(PathBuf),
}

impl OutputTarget {
    /// The default when no `-o` was given: a file in the current directory named after the URL.
    pub fn from_url(url: &Url) -> Self {
        OutputTarget::Path(PathBuf::from(file_name_from_url(url)))
    }
}

/// Why an `-o` value names no output; a usage error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputTargetError {
    /// `-o ''`: an empty path names no file.
    #[error("the output path is empty")]
    Empty,
}

/// Interprets an `-o` value: `-` is standard output, anything else but the empty string a path.
impl FromStr for OutputTarget {
    type Err = OutputTargetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "" => Err(OutputTargetError::Empty),
            "-" => Ok(OutputTarget::Stdout),
            path => Ok(OutputTarget::Path(PathBuf::from(path))),
        }
    }
}

/// An open destination for body bytes; see the module docs for the file guarantees.
#[derive(Debug)]
pub struct Output {
    sink: Sink,
}

#[derive(Debug)]
enum Sink {
    Stdout(BufWriter<io::Stdout>),
    File(PendingFile),
    /// An existing target that is not a regular file (`/dev/null`, a FIFO, a terminal): written
    /// in place, since renaming a temporary file over it would replace the device itself.
    Special(SpecialFile),
}

/// A device or FIFO written in place. A FIFO nobody reads yet is opened on first use, on the
/// writer's thread: a blocking open(2) waits for a reader, and the event loop must not stop
/// reading the TUN device (and acknowledging) meanwhile.
#[derive(Debug)]
struct SpecialFile {
    writer: Option<BufWriter<File>>,
    path: PathBuf,
}

impl SpecialFile {
    /// Opens `path` now unless it is a FIFO without a reader; any other error is reported now,
    /// before the download starts.
    fn open(path: &Path) -> io::Result<SpecialFile> {
        use std::os::unix::fs::OpenOptionsExt;
        let opened = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path);
        let writer = match opened {
            Ok(file) => {
                set_blocking(&file)?;
                Some(BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, file))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => None,
            Err(e) => return Err(e),
        };
        Ok(SpecialFile {
            writer,
            path: path.to_owned(),
        })
    }

    fn writer(&mut self) -> io::Result<&mut BufWriter<File>> {
        if self.writer.is_none() {
            let file = OpenOptions::new().write(true).open(&self.path)?;
            self.writer = Some(BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, file));
        }
        Ok(self.writer.as_mut().expect("opened above"))
    }
}

/// Clears O_NONBLOCK, so writes to a pipe or terminal wait instead of failing with EAGAIN.
fn set_blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// True for an existing path that is neither a regular file nor a directory (a device, FIFO or
/// socket), following symlinks as a write would.
fn is_special_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| !meta.is_file() && !meta.is_dir())
}

/// A temporary file that becomes `target` on commit and disappears otherwise.
#[derive(Debug)]
struct PendingFile {
    /// `None` once committed (or while committing).
    writer: Option<BufWriter<File>>,
    temp: PathBuf,
    target: PathBuf,
    /// A resumable download (`-c`): what was written stays on failure, to continue from later.
    keep_on_failure: bool,
}

impl Output {
    /// Opens the destination: for a path, creates a fresh temporary file next to it.
    pub fn create(target: &OutputTarget) -> Result<Output, OutputError> {
        let sink = match target {
            OutputTarget::Stdout => {
                Sink::Stdout(BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, io::stdout()))
            }
            OutputTarget::Path(path) if is_special_file(path) => Sink::Special(
                SpecialFile::open(path).map_err(|source| OutputError::Commit {
                    path: path.clone(),
                    source,
                })?,
            ),
            OutputTarget::Path(path) => Sink::File(PendingFile::create(path)?),
        };
        Ok(Output { sink })
    }

    /// Appends to `working`, which replaces `target` on commit and survives a failure: the
    /// file behind `-c`.
    pub fn resume(working: &Path, target: &Path) -> Result<Output, OutputError> {
        Ok(Output {
            sink: Sink::File(PendingFile::resume(working, target)?),
        })
    }

    /// The temporary file while the download is in progress, so a signal handler can delete it
    /// if the process is interrupted before `Drop` runs. `None` for standard output.
    pub fn temp_path(&self) -> Option<&Path> {
        match &self.sink {
            Sink::Stdout(_) | Sink::Special(..) => None,
            Sink::File(pending) => Some(&pending.temp),
        }
    }

    /// The temporary file that must not outlive a failed download: `None` for standard output,
    /// devices, and the `.part` file of `-c`, which is kept on purpose.
    pub fn discarded_on_failure(&self) -> Option<&Path> {
        match &self.sink {
            Sink::File(pending) if !pending.keep_on_failure => Some(&pending.temp),
            _ => None,
        }
    }

    /// Makes the download final: flushes and syncs the data, atomically replaces the target
    /// with it and syncs the directory so the rename survives a crash.
    pub fn commit(self) -> Result<(), OutputError> {
        match self.sink {
            Sink::Stdout(mut writer) => writer.flush().map_err(OutputError::Stdout),
            Sink::File(mut pending) => pending.commit(),
            Sink::Special(mut special) => special
                .writer()
                .and_then(|writer| writer.flush())
                .map_err(|source| OutputError::Commit {
                    path: special.path,
                    source,
                }),
        }
    }
}

impl Write for Output {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match &mut self.sink {
            Sink::Stdout(writer) => writer.write(bytes),
            Sink::File(pending) => pending.writer()?.write(bytes),
            Sink::Special(special) => special.writer()?.write(bytes),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stdout(writer) => write_through(writer, bytes),
            Sink::File(pending) => write_through(pending.writer()?, bytes),
            Sink::Special(special) => write_through(special.writer()?, bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stdout(writer) => writer.flush(),
            Sink::File(pending) => pending.writer()?.flush(),
            Sink::Special(special) => special.writer()?.flush(),
        }
    }
}

/// Buffers small pieces; flushes what is buffered and writes a big piece straight through.
fn write_through<W: Write>(writer: &mut BufWriter<W>, bytes: &[u8]) -> io::Result<()> {
    if bytes.len() < DIRECT_WRITE_BYTES {
        return writer.write_all(bytes);
    }
    writer.flush()?;
    writer.get_mut().write_all(bytes)
}

impl PendingFile {
    fn create(target: &Path) -> Result<PendingFile, OutputError> {
        let name = target
            .file_name()
            .ok_or_else(|| OutputError::NotAFile(target.to_owned()))?;
        if fs::metadata(target).is_ok_and(|meta| meta.is_dir()) {
            return Err(OutputError::IsDirectory(target.to_owned()));
        }
        let dir = directory_of(target);
        let mut last_error = io::Error::from(io::ErrorKind::AlreadyExists);
        for _ in 0..TEMP_NAME_ATTEMPTS {
            let temp = dir.join(temp_name(
                name,
                TEMP_COUNTER.fetch_add(1, Ordering::Relaxed),
            ));
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => {
                    return Ok(PendingFile {
                        writer: Some(BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, file)),
                        temp,
                        target: target.to_owned(),
                        keep_on_failure: false,
                    })
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last_error = error,
                Err(error) => {
                    last_error = error;
                    break;
                }
            }
        }
        Err(OutputError::CreateTemp {
            dir: dir.to_owned(),
            source: last_error,
        })
    }

    /// Appends to `working` (created if missing), which becomes `target` on commit; kept, with
    /// everything written so far, if the download fails.
    fn resume(working: &Path, target: &Path) -> Result<PendingFile, OutputError> {
        if fs::metadata(target).is_ok_and(|meta| meta.is_dir()) {
            return Err(OutputError::IsDirectory(target.to_owned()));
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(working)
            .map_err(|source| OutputError::CreateTemp {
                dir: directory_of(working).to_owned(),
                source,
            })?;
        Ok(PendingFile {
            writer: Some(BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, file)),
            temp: working.to_owned(),
            target: target.to_owned(),
            keep_on_failure: true,
        })
    }

    fn writer(&mut self) -> io::Result<&mut BufWriter<File>> {
        self.writer
            .as_mut()
            .ok_or_else(|| io::Error::other("output already committed"))
    }

    fn commit(&mut self) -> Result<(), OutputError> {
        let commit_error = |source| OutputError::Commit {
            path: self.target.clone(),
            source,
        };
        let Some(writer) = self.writer.take() else {
            return Err(commit_error(io::Error::other("output already committed")));
        };
        let synced = writer
            .into_inner()
            .map_err(|error| error.into_error())
            .and_then(|file| file.sync_all());
        let renamed = synced.and_then(|()| {
            if self.temp == self.target {
                Ok(())
            } else {
                fs::rename(&self.temp, &self.target)
            }
        });
        if let Err(error) = renamed {
            // Nothing replaced the target; do not leave the partial data behind either (unless
            // it is a resumable download's).
            if !self.keep_on_failure {
                let _ = fs::remove_file(&self.temp);
            }
            return Err(commit_error(error));
        }
        File::open(directory_of(&self.target))
            .and_then(|dir| dir.sync_all())
            .map_err(commit_error)
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if let Some(mut writer) = self.writer.take() {
            if self.keep_on_failure {
                // A resumable download keeps every byte it got, for the next `-c`.
                let _ = writer.flush();
                return;
            }
            // Discard buffered bytes rather than flushing them into a file about to be deleted.
            let (file, _unwritten) = writer.into_parts();
            drop(file);
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// The directory holding `path`; `.` for a bare file name.
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// `.NAME.tunstack-PID-N.tmp`: hidden, recognisably ours, unique per process and attempt.
fn temp_name(target_name: &OsStr, counter: u64) -> OsString {
    let stem = target_name.as_bytes();
    let stem = stem.get(..TEMP_NAME_STEM_MAX).unwrap_or(stem);
    let mut name = Vec::with_capacity(stem.len() + 40);
    name.push(b'.');
    name.extend_from_slice(stem);
    name.extend_from_slice(format!(".tunstack-{}-{counter}.tmp", std::process::id()).as_bytes());
    OsString::from_vec(name)
}

/// The local file name for a URL when the user gave none: the last path segment,
/// percent-decoded and made safe (no path separators, NUL or control characters, never `.` or
/// `..`, at most 255 bytes), or `index.html` for a directory-like path.
pub fn file_name_from_url(url: &Url) -> String {
    let last_segment = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .unwrap_or("");
    let decoded: Vec<u8> = percent_decode_str(last_segment).collect();
    let mut name: String = String::from_utf8_lossy(&decoded)
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if name.len() > NAME_MAX {
        let mut end = NAME_MAX;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    if name.is_empty() || name == "." || name == ".." {
        return "index.html".to_owned();
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed with everything in it on drop.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new(label: &str) -> TestDir {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "tunstack-output-test-{}-{label}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir(&path).unwrap();
            TestDir(path)
        }

        fn entries(&self) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(&self.0)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn big_pieces_go_straight_through_after_what_was_buffered() {
        let mut writer = BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, Vec::new());
        let big = vec![b'b'; DIRECT_WRITE_BYTES];
        write_through(&mut writer, b"head").unwrap();
        assert_eq!(
            writer.buffer(),
            b"head",
            "a small piece waits in the buffer"
        );
        write_through(&mut writer, &big).unwrap();
        assert!(
            writer.buffer().is_empty(),
            "the big piece was not copied into the buffer"
        );
        write_through(&mut writer, b"tail").unwrap();
        let written = writer.into_inner().unwrap();
        assert_eq!(written, [&b"head"[..], &big, b"tail"].concat());
    }

    #[test]
    fn a_device_target_is_written_in_place_not_replaced() {
        // Through a symlink, so a regression would replace the link, never /dev/null itself.
        let dir = TestDir::new("device");
        let link = dir.0.join("sink");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let mut output = Output::create(&OutputTarget::Path(link.clone())).unwrap();
        assert_eq!(output.temp_path(), None);
        output.write_all(b"discarded").unwrap();
        output.commit().unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(dir.entries(), vec!["sink".to_string()]);
    }

    #[test]
    fn a_fifo_without_a_reader_is_opened_by_the_writer_not_by_create() {
        use std::io::Read;
        use std::sync::mpsc;
        use std::time::Duration;
        let dir = TestDir::new("fifo");
        let fifo = dir.0.join("pipe");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        // `create` must return at once (the event loop calls it); a blocking open would wait
        // here for a reader that never comes, so it runs on a thread with a deadline.
        let (created, was_created) = mpsc::channel();
        let target = OutputTarget::Path(fifo.clone());
        let writer = std::thread::spawn(move || {
            let mut output = Output::create(&target).unwrap();
            created.send(()).unwrap();
            output.write_all(b"through the pipe").unwrap();
            output.commit().unwrap();
        });
        was_created
            .recv_timeout(Duration::from_secs(5))
            .expect("Output::create returned without a reader");
        let mut got = String::new();
        File::open(&fifo).unwrap().read_to_string(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got, "through the pipe");
    }

    #[test]
    fn commit_moves_the_complete_file_into_place() {
        let dir = TestDir::new("commit");
        let target = dir.0.join("data.bin");
        let mut output = Output::create(&OutputTarget::Path(target.clone())).unwrap();
        let temp = output.temp_path().unwrap().to_owned();
        assert_eq!(temp.parent(), Some(dir.0.as_path()));
        let temp_name = temp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(temp_name.starts_with(".data.bin.tunstack-"), "{temp_name}");
        assert!(temp_name.ends_with(".tmp"), "{temp_name}");
        assert!(temp.exists());
        assert!(!target.exists(), "target must not appear before commit");

        let body: Vec<u8> = (0..3 * OUTPUT_BUFFER_BYTES + 17)
            .map(|i| (i % 251) as u8)
            .collect();
        for piece in body.chunks(1500) {
            output.write_all(piece).unwrap();
        }
        output.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), body);
        assert_eq!(dir.entries(), ["data.bin"]);
    }

    #[test]
    fn dropping_uncommitted_output_keeps_the_old_target() {
        let dir = TestDir::new("drop");
        let target = dir.0.join("keep.txt");
        fs::write(&target, b"previous contents").unwrap();
        let mut output = Output::create(&OutputTarget::Path(target.clone())).unwrap();
        output
            .write_all(&vec![b'x'; OUTPUT_BUFFER_BYTES * 2])
            .unwrap();
        output.write_all(b"partial").unwrap();
        let temp = output.temp_path().unwrap().to_owned();
        assert!(temp.exists());
        drop(output);
        assert!(!temp.exists());
        assert_eq!(fs::read(&target).unwrap(), b"previous contents");
        assert_eq!(dir.entries(), ["keep.txt"]);
    }

    #[test]
    fn commit_replaces_an_existing_target() {
        let dir = TestDir::new("replace");
        let target = dir.0.join("f");
        fs::write(&target, b"old old old old").unwrap();
        let mut output = Output::create(&OutputTarget::Path(target.clone())).unwrap();
        output.write_all(b"new").unwrap();
        output.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(dir.entries(), ["f"]);
    }

    #[test]
    fn empty_download_still_creates_the_file() {
        let dir = TestDir::new("empty");
        let target = dir.0.join("empty");
        Output::create(&OutputTarget::Path(target.clone()))
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"");
    }

    #[test]
    fn concurrent_outputs_to_one_target_use_distinct_temp_files() {
        let dir = TestDir::new("twice");
        let target = OutputTarget::Path(dir.0.join("same"));
        let first = Output::create(&target).unwrap();
        let second = Output::create(&target).unwrap();
        assert_ne!(first.temp_path(), second.temp_path());
        drop(first);
        drop(second);
        assert!(dir.entries().is_empty());
    }

    #[test]
    fn directory_targets_are_refused_without_side_effects() {
        let dir = TestDir::new("isdir");
        fs::create_dir(dir.0.join("sub")).unwrap();
        let err = Output::create(&OutputTarget::Path(dir.0.join("sub"))).unwrap_err();
        assert!(matches!(err, OutputError::IsDirectory(_)), "{err}");
        assert!(err.to_string().ends_with("sub is a directory"), "{err}");
        let err = Output::create(&OutputTarget::Path(dir.0.join("sub/.."))).unwrap_err();
        assert!(matches!(err, OutputError::NotAFile(_)), "{err}");
        assert_eq!(dir.entries(), ["sub"]);
    }

    #[test]
    fn missing_directory_is_reported() {
        let dir = TestDir::new("missing");
        let err = Output::create(&OutputTarget::Path(dir.0.join("nope/f"))).unwrap_err();
        assert!(matches!(err, OutputError::CreateTemp { .. }), "{err}");
        assert!(err
            .to_string()
            .starts_with("cannot create a temporary file in "));
    }

    #[test]
    fn failed_commit_leaves_no_temp_file() {
        let dir = TestDir::new("failcommit");
        let target = dir.0.join("t");
        let mut output = Output::create(&OutputTarget::Path(target.clone())).unwrap();
        output.write_all(b"data").unwrap();
        // Make the rename fail: a non-empty directory now sits where the file should go.
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inner"), b"").unwrap();
        let err = output.commit().unwrap_err();
        assert!(matches!(err, OutputError::Commit { .. }), "{err}");
        assert_eq!(dir.entries(), ["t"]);
    }

    #[test]
    fn long_target_names_still_get_a_valid_temp_name() {
        let dir = TestDir::new("long");
        let name = "n".repeat(NAME_MAX);
        let target = dir.0.join(&name);
        let mut output = Output::create(&OutputTarget::Path(target.clone())).unwrap();
        assert!(output.temp_path().unwrap().file_name().unwrap().len() <= NAME_MAX);
        output.write_all(b"ok").unwrap();
        output.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"ok");
    }

    #[test]
    fn stdout_has_no_temp_file() {
        let output = Output::create(&OutputTarget::Stdout).unwrap();
        assert_eq!(output.temp_path(), None);
        output.commit().unwrap();
    }

    #[test]
    fn dash_means_stdout() {
        assert_eq!("-".parse(), Ok(OutputTarget::Stdout));
        assert_eq!("-x".parse(), Ok(OutputTarget::Path(PathBuf::from("-x"))));
        assert_eq!("".parse::<OutputTarget>(), Err(OutputTargetError::Empty));
        assert_eq!(
            OutputTarget::from_url(&url("http://h/a/b.iso")),
            OutputTarget::Path(PathBuf::from("b.iso"))
        );
    }

    #[test]
    fn bare_file_names_live_in_the_current_directory() {
        assert_eq!(directory_of(Path::new("f")), Path::new("."));
        assert_eq!(directory_of(Path::new("d/f")), Path::new("d"));
        assert_eq!(directory_of(Path::new("/f")), Path::new("/"));
    }

    #[test]
    fn file_name_comes_from_the_last_segment() {
        let cases = [
            ("http://h/dir/file.tar.gz", "file.tar.gz"),
            ("http://h/file.txt?query=1#frag", "file.txt"),
            ("http://h/a%20b%C3%BC.txt", "a bü.txt"),
            ("http://h/", "index.html"),
            ("http://h", "index.html"),
            ("http://h/dir/", "index.html"),
            ("http://h/a%2Fb", "a_b"),
            ("http://h/a%5Cb", "a_b"),
            ("http://h/a%00b%0A", "a_b_"),
            ("http://h/%2e", "index.html"),
            ("http://h/%2e%2e", "index.html"),
            ("http://h/x/%2E%2E", "index.html"),
            ("http://h/...", "..."),
            ("http://h/%FF", "\u{fffd}"),
            ("http://h/-rf", "-rf"),
        ];
        for (input, expected) in cases {
            assert_eq!(file_name_from_url(&url(input)), expected, "{input}");
        }
    }

    #[test]
    fn file_name_is_bounded_in_length() {
        let long = format!("http://h/{}", "é".repeat(200));
        let name = file_name_from_url(&url(&long));
        assert!(name.len() <= NAME_MAX);
        assert!(name.chars().all(|c| c == 'é'));
    }
}
