//! Test files: reproducible contents, digests, scratch directories and directory listings.

use std::fs;
use std::path::{Path, PathBuf};

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

pub const MIB: usize = 1024 * 1024;

/// `len` bytes that depend only on `seed`, so a failure can be reproduced byte for byte.
pub fn seeded_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0; len];
    SmallRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Lowercase hex SHA-256 of the file at `path`, with the path in the panic message if unreadable.
pub fn sha256_of_file(path: &Path) -> String {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    sha256_hex(&bytes)
}

/// The length of the file at `path`, 0 while it does not exist.
#[allow(dead_code)] // not every test file watches files grow
pub fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

/// Asserts the file `name` in `dir` has the SHA-256 `sha256` (lowercase hex): it is what was
/// served.
#[allow(dead_code)] // not every test file checks saved files this way
pub fn assert_saved(dir: &Path, name: &str, sha256: &str) {
    assert_eq!(
        sha256_of_file(&dir.join(name)),
        sha256,
        "{name} differs from what was served"
    );
}

/// The names in `dir`, sorted.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts `dir` holds exactly `expected` (sorted names): no temporary or partial file left.
pub fn assert_dir_holds(dir: &Path, expected: &[&str]) {
    assert_eq!(
        list_dir(dir),
        expected,
        "unexpected files in {}",
        dir.display()
    );
}

/// A directory under the system temp dir, removed with everything in it on drop.
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates an empty directory named after `label` and this process.
    pub fn new(label: &str) -> ScratchDir {
        let path =
            std::env::temp_dir().join(format!("tunstack-e2e-{label}-{}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).unwrap();
        }
        fs::create_dir_all(&path).unwrap();
        ScratchDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
