//! One test per `tests/scripts/*.pkt`: each script states one TCP rule, named after its RFC
//! clause, in a packetdrill-like dialect (see `tests/scripts/README.md`), and runs against the
//! real `Stack` under virtual time: no root, no TUN, no clock.

mod script;

use std::path::Path;

use script::run::Failure;

/// Runs one script. A script marked `xfail REASON` documents a known defect: it must fail,
/// and once it passes the test fails so the mark gets removed.
fn run_script(path: &Path, text: String) -> datatest_stable::Result<()> {
    let name = path.display().to_string();
    let parsed = script::parse::parse(&text)
        .map_err(|e| Report(format!("{name}:{}: {}", e.line, e.message)))?;
    let outcome = script::run::run(&name, &parsed);
    match (&parsed.xfail, outcome) {
        (_, Err(Failure::Setup(msg))) => Err(Report(msg).into()),
        (None, Ok(())) => Ok(()),
        (None, Err(Failure::Mismatch(msg))) => Err(Report(msg).into()),
        (Some(reason), Err(Failure::Mismatch(msg))) => {
            println!("{name}: xfail ({reason}); failed as expected:\n{msg}");
            Ok(())
        }
        (Some(reason), Ok(())) => Err(Report(format!(
            "{name}: marked `xfail {reason}` but passes now: remove the xfail line"
        ))
        .into()),
    }
}

/// The failure text as it is: the harness prints errors with `{:?}`, which would escape the
/// newlines of a multi-line message.
struct Report(String);

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Report {}

datatest_stable::harness! {
    { test = run_script, root = "tests/scripts", pattern = r"\.pkt$" },
}
