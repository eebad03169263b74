//! `tunstack plot`: pictures of a connection from a `--trace` file (docs/trace-format.md).
//!
//! [`reader`] parses the trace, [`model`] turns one connection into the series to draw,
//! [`decimate`] thins them to what the pixels can show, [`svg`] and [`panels`] draw them with
//! plotters' SVG backend, and [`html`] wraps the pictures in one self-contained page that zooms.
//! Nothing here touches the network; [`run`] is the whole command minus clap.

pub mod decimate;
pub mod html;
pub mod marks;
pub mod model;
pub mod panels;
pub mod reader;
pub mod svg;
#[cfg(any(test, feature = "testing"))]
pub mod synth;

use std::path::{Path, PathBuf};

pub use model::Flow;
pub use reader::{parse, Trace};
pub use svg::{render, RenderOptions};

/// What `tunstack plot` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotRequest {
    /// The trace file.
    pub trace: PathBuf,
    /// The picture to write: `.svg` or `.html`.
    pub output: PathBuf,
    /// Only this connection.
    pub conn: Option<u64>,
}

/// Why `tunstack plot` failed; [`PlotError::exit_code`] maps it to the exit status.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Bad input or usage: a malformed trace, an unknown connection, an unknown extension.
    #[error("{0}")]
    Input(String),
    /// Reading the trace or writing a picture failed.
    #[error("{0}")]
    Io(String),
}

impl PlotError {
    /// 2 for bad input (as for a usage error), 1 for I/O, as `fetch` and `serve` do.
    pub fn exit_code(&self) -> u8 {
        match self {
            PlotError::Input(_) => 2,
            PlotError::Io(_) => 1,
        }
    }
}

/// The output format, from the file name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A plain SVG picture.
    Svg,
    /// A page with the pictures inline, zoom and hover.
    Html,
}

impl Format {
    /// `.svg` or `.html`/`.htm`, case-insensitively.
    pub fn of(path: &Path) -> Result<Format, PlotError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("svg") => Ok(Format::Svg),
            Some("html" | "htm") => Ok(Format::Html),
            _ => Err(PlotError::Input(format!(
                "{}: the output must end in .svg or .html",
                path.display()
            ))),
        }
    }
}

/// What [`run`] did: the files written, and warnings for stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlotReport {
    /// Every file written, in order.
    pub written: Vec<PathBuf>,
    /// Things the user should know (a cut last line).
    pub warnings: Vec<String>,
}

/// Reads the trace and writes the picture(s). One connection, or `--conn`, gives one file at
/// `output`. Several connections give one SVG per connection, `NAME.conn-ID.svg` beside
/// `output`, or one HTML page with all of them in id order.
pub fn run(request: &PlotRequest) -> Result<PlotReport, PlotError> {
    let format = Format::of(&request.output)?;
    let text = std::fs::read(&request.trace)
        .map_err(|e| PlotError::Io(format!("cannot read {}: {e}", request.trace.display())))?;
    let text = String::from_utf8_lossy(&text);
    let trace =
        parse(&text).map_err(|e| PlotError::Input(format!("{}: {e}", request.trace.display())))?;
    let mut report = PlotReport::default();
    if trace.truncated_tail {
        report.warnings.push(format!(
            "{}: the last line is cut short (was the traced process killed?); left out",
            request.trace.display()
        ));
    }
    let flows: Vec<Flow> = match request.conn {
        Some(id) => match trace.conns.get(&id) {
            Some(conn) => vec![Flow::new(conn)],
            None => {
                let known: Vec<String> = trace.conns.keys().map(u64::to_string).collect();
                return Err(PlotError::Input(format!(
                    "{}: no connection {id} (the trace has {})",
                    request.trace.display(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        },
        None => trace.conns.values().map(Flow::new).collect(),
    };
    if flows.is_empty() {
        return Err(PlotError::Input(format!(
            "{}: the trace has no connection to draw",
            request.trace.display()
        )));
    }
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text)
            .map_err(|e| PlotError::Io(format!("cannot write {}: {e}", path.display())))
    };
    match format {
        Format::Html => {
            let page = html::page(&flows, trace.cmd.as_deref()).map_err(PlotError::Input)?;
            write(&request.output, &page)?;
            report.written.push(request.output.clone());
        }
        Format::Svg => {
            for flow in &flows {
                let options = RenderOptions {
                    id_prefix: flow.id,
                    ..RenderOptions::default()
                };
                let picture = render(flow, &options).map_err(PlotError::Input)?;
                let path = if flows.len() == 1 {
                    request.output.clone()
                } else {
                    per_connection(&request.output, flow.id)
                };
                write(&path, &picture)?;
                report.written.push(path);
            }
        }
    }
    Ok(report)
}

/// `flow.svg` → `flow.conn-3.svg`.
pub fn per_connection(output: &Path, id: u64) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = output
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!("{stem}.conn-{id}.{ext}"))
}
