//! Harnesses behind the fuzz targets in `fuzz_targets/`: each drives tunstack's public API with
//! bytes from the fuzzer and panics when an invariant breaks. They live in a library so that the
//! committed seed corpora can also be replayed by `cargo test` here, on stable Rust.

pub mod arp_target;
pub mod ethernet_target;
pub mod http_target;
pub mod input;
pub mod ipv4_target;
pub mod packet;
pub mod serve_target;
pub mod tcp_target;

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Replays every file of `fuzz/corpus/<target>` through `run`.
    fn replay(target: &str, run: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target);
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus directory exists") {
            let path = entry.expect("readable entry").path();
            run(&std::fs::read(&path).expect("readable seed"));
            count += 1;
        }
        assert!(count > 0, "no seeds in {}", dir.display());
    }

    #[test]
    fn ipv4_seeds() {
        replay("ipv4", crate::ipv4_target::run);
    }

    #[test]
    fn tcp_seeds() {
        replay("tcp", crate::tcp_target::run);
    }

    #[test]
    fn http_seeds() {
        replay("http", crate::http_target::run);
    }

    #[test]
    fn ethernet_seeds() {
        replay("ethernet", crate::ethernet_target::run);
    }

    #[test]
    fn arp_seeds() {
        replay("arp", crate::arp_target::run);
    }

    #[test]
    fn serve_seeds() {
        replay("serve", crate::serve_target::run);
    }
}
