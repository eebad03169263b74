//! Replays one input through a harness on stable Rust, without libFuzzer, e.g. to debug a
//! crash with prints:
//! `cargo run --manifest-path fuzz/Cargo.toml --example replay -- tcp fuzz/artifacts/tcp/FILE`

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(target), Some(path)) = (args.next(), args.next()) else {
        eprintln!("usage: replay ipv4|tcp|http FILE");
        std::process::exit(2);
    };
    let data = std::fs::read(&path).unwrap_or_else(|err| {
        eprintln!("replay: cannot read {path}: {err}");
        std::process::exit(2);
    });
    match target.as_str() {
        "ipv4" => tunstack_fuzz::ipv4_target::run(&data),
        "tcp" => tunstack_fuzz::tcp_target::run(&data),
        "http" => tunstack_fuzz::http_target::run(&data),
        other => {
            eprintln!("replay: unknown target {other}");
            std::process::exit(2);
        }
    }
    println!("replay: {path} passed the {target} harness");
}
