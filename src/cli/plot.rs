//! `tunstack plot`: which trace to draw, and where.

use std::path::PathBuf;

use clap::Args;

/// Options of `tunstack plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Where to write the picture: NAME.svg, or NAME.html (one page, zoom and hover). With
    /// several connections and no --conn, SVG gives one file per connection, NAME.conn-ID.svg.
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,

    /// Draw only the connection with this id (the trace's "conn").
    #[arg(long, value_name = "ID")]
    pub conn: Option<u64>,

    /// The trace, as written by --trace.
    #[arg(value_name = "TRACE")]
    pub trace: PathBuf,
}

impl PlotArgs {
    /// The request this command line stands for.
    pub fn request(&self) -> crate::plot::PlotRequest {
        crate::plot::PlotRequest {
            trace: self.trace.clone(),
            output: self.output.clone(),
            conn: self.conn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn plot_takes_a_trace_an_output_and_maybe_a_connection() {
        let cli =
            Cli::try_parse_from(["tunstack", "plot", "t.jsonl", "-o", "f.svg", "--conn", "3"]);
        let Command::Plot(args) = cli.unwrap().command else {
            panic!("parsed as another command");
        };
        let request = args.request();
        assert_eq!(request.trace, PathBuf::from("t.jsonl"));
        assert_eq!(request.output, PathBuf::from("f.svg"));
        assert_eq!(request.conn, Some(3));
        for bad in [
            &["plot", "t.jsonl"][..],
            &["plot", "-o", "f.svg"],
            &["plot", "t", "-o", "f.svg", "--conn", "x"],
        ] {
            let argv = std::iter::once("tunstack").chain(bad.iter().copied());
            assert_eq!(
                Cli::try_parse_from(argv).unwrap_err().exit_code(),
                2,
                "{bad:?}"
            );
        }
    }
}
