//! A packetdrill-like dialect for segment-level TCP tests, run against the sans-IO `Stack`
//! under virtual time. See `tests/scripts/README.md` for the language.

pub mod config;
pub mod format;
pub mod parse;
pub mod run;
pub mod wire;
