//! `tunstack plot` as a user runs it: the binary on fixture traces (hand-written ones in
//! tests/fixtures/trace/ and a made-up lossy transfer from `tunstack::plot::synth`), the SVG
//! checked as XML (panels, series, legend, one × per injected drop), the page checked for being
//! self-contained, and both opened in headless Chromium: the page's script ran, and the
//! screenshots are not blank. Chromium is skipped (with a reason) only outside CI.
//!
//! Everything goes to target/plot-test/; nothing needs root or a network.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tunstack::plot::synth::{lossy_transfer, Lossy, Made};

fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("plot-test")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/trace")
        .join(name)
}

fn plot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tunstack"))
        .arg("plot")
        .args(args)
        .output()
        .unwrap()
}

fn ok(output: &Output) -> Vec<String> {
    assert!(
        output.status.success(),
        "status {:?}, stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// The made-up lossy transfer written as a trace file, with what it holds.
fn lossy(dir: &Path, spec: &Lossy) -> (PathBuf, Made) {
    let made = lossy_transfer(spec);
    let path = dir.join("lossy.jsonl");
    std::fs::write(&path, &made.text).unwrap();
    (path, made)
}

/// Checks the document's structure; returns it for more checks.
fn check_svg(text: &str) -> roxmltree::Document<'_> {
    let doc = roxmltree::Document::parse(text).expect("the SVG is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let panels: Vec<&str> = root
        .children()
        .filter(|n| n.has_attribute("data-panel"))
        .map(|n| n.attribute("data-panel").unwrap())
        .collect();
    assert_eq!(panels, ["seq", "cc", "rtt", "goodput", "rwnd"]);
    doc
}

fn series<'a>(doc: &'a roxmltree::Document<'a>, class: &str) -> Vec<&'a str> {
    doc.descendants()
        .filter(|n| n.attribute("class") == Some(class))
        .filter_map(|n| n.attribute("data-series"))
        .collect()
}

fn marks(doc: &roxmltree::Document<'_>, name: &str) -> Vec<String> {
    doc.descendants()
        .filter(|n| {
            n.attribute("class") == Some("series") && n.attribute("data-series") == Some(name)
        })
        .flat_map(|g| g.children().filter(|c| c.is_element()))
        .map(|m| {
            m.children()
                .find(|c| c.tag_name().name() == "title")
                .and_then(|t| t.text())
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

#[test]
fn a_served_flow_has_every_panel_series_and_legend_entry() {
    let dir = out_dir("served");
    let svg = dir.join("flow.svg");
    let written = ok(&plot(&[
        fixture("served.jsonl").to_str().unwrap(),
        "-o",
        svg.to_str().unwrap(),
    ]));
    assert_eq!(written, [svg.display().to_string()]);
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = check_svg(&text);
    let drawn = series(&doc, "series");
    for want in [
        "data",
        "ack",
        "window",
        "sack",
        "rexmit-fast",
        "rexmit-rto",
        "injected-drop",
        "cwnd",
        "ssthresh",
        "inflight",
        "rtt-sample",
        "srtt",
        "rto",
        "rto-backoff",
        "goodput",
        "advertised",
        "buffered",
        "capacity",
        "peer-window",
    ] {
        assert!(drawn.contains(&want), "no series {want} in {drawn:?}");
    }
    let legend = series(&doc, "legend-entry");
    for want in [
        "data",
        "ack",
        "window",
        "sack",
        "rexmit-fast",
        "rexmit-rto",
        "injected-drop",
        "cwnd",
        "srtt",
        "goodput",
    ] {
        assert!(
            legend.contains(&want),
            "no legend entry {want} in {legend:?}"
        );
    }
    // Two injected drops in the fixture: two ×, each with its event.
    let drops = marks(&doc, "injected-drop");
    assert_eq!(drops.len(), 2, "{drops:?}");
    assert!(
        drops[0].contains("seq=1449..2897") && drops[0].contains("line 14"),
        "{drops:?}"
    );
    assert_eq!(marks(&doc, "rexmit-rto-mark").len(), 1);
    let title = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("title"))
        .unwrap();
    let words: String = title.descendants().filter_map(|n| n.text()).collect();
    assert!(
        words.contains("10.77.0.2:80 ⇄ 10.77.1.2:40000 (server)"),
        "{words}"
    );
    assert!(
        words.contains("retransmissions: 2 (fast 1, rto 1)") && words.contains("injected drops: 2"),
        "{words}"
    );
}

#[test]
fn several_connections_give_one_file_each_or_one_page() {
    let dir = out_dir("two");
    let trace = fixture("fetched-two.jsonl");
    let svg = dir.join("flow.svg");
    let output = plot(&[trace.to_str().unwrap(), "-o", svg.to_str().unwrap()]);
    let written = ok(&output);
    let want: Vec<String> = [1, 2]
        .iter()
        .map(|i| dir.join(format!("flow.conn-{i}.svg")).display().to_string())
        .collect();
    assert_eq!(written, want);
    // The fixture ends in half a line, as a killed process leaves it: said, and left out.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("last line is cut short"), "{stderr}");
    let first = std::fs::read_to_string(&want[0]).unwrap();
    let doc = check_svg(&first);
    // A download is drawn from the receiver's side: the peer's data, our ACKs, our drop of it.
    assert!(first.contains("data we received"));
    assert_eq!(marks(&doc, "injected-drop").len(), 1);
    assert!(series(&doc, "series").contains(&"peer-rexmit"));

    let one = dir.join("only.svg");
    assert_eq!(
        ok(&plot(&[
            trace.to_str().unwrap(),
            "--conn",
            "2",
            "-o",
            one.to_str().unwrap()
        ])),
        [one.display().to_string()]
    );
    assert!(
        std::fs::read_to_string(&one)
            .unwrap()
            .contains("connection refused")
            || one.exists()
    );

    let page = dir.join("flows.html");
    assert_eq!(
        ok(&plot(&[
            trace.to_str().unwrap(),
            "-o",
            page.to_str().unwrap()
        ])),
        [page.display().to_string()]
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("<svg ").count(), 2);
}

#[test]
fn bad_input_is_status_2_and_io_trouble_status_1_with_one_line() {
    let dir = out_dir("errors");
    let trace = fixture("served.jsonl");
    let svg = dir.join("x.svg");
    let broken = dir.join("broken.jsonl");
    let text =
        std::fs::read_to_string(&trace)
            .unwrap()
            .replacen("\"seq\":2897,", "\"seq\":2897", 1);
    std::fs::write(&broken, text).unwrap();
    let future = dir.join("v2.jsonl");
    std::fs::write(&future, "{\"t\":0,\"ev\":\"trace\",\"version\":2}\n").unwrap();
    for (args, status, says) in [
        (
            vec![broken.to_str().unwrap(), "-o", svg.to_str().unwrap()],
            2,
            "line 15, column",
        ),
        (
            vec![future.to_str().unwrap(), "-o", svg.to_str().unwrap()],
            2,
            "version 2 is not supported",
        ),
        (
            vec![
                trace.to_str().unwrap(),
                "--conn",
                "7",
                "-o",
                svg.to_str().unwrap(),
            ],
            2,
            "no connection 7 (the trace has 1)",
        ),
        (
            vec![trace.to_str().unwrap(), "-o", "x.png"],
            2,
            "must end in .svg or .html",
        ),
        (
            vec!["/nonexistent/trace.jsonl", "-o", svg.to_str().unwrap()],
            1,
            "cannot read /nonexistent/trace.jsonl",
        ),
        (
            vec![trace.to_str().unwrap(), "-o", "/nonexistent/dir/x.svg"],
            1,
            "cannot write /nonexistent/dir/x.svg",
        ),
        (vec![trace.to_str().unwrap()], 2, "--output"),
    ] {
        let output = plot(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(status), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        if status == 1 || !says.starts_with("--") {
            assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        }
    }
}

#[test]
fn a_large_lossy_transfer_renders_in_seconds_into_a_small_file() {
    let dir = out_dir("large");
    // 64 MiB in 1448-byte segments: ~46,000 data segments, as many ACKs, ~150,000 lines.
    let spec = Lossy {
        bytes: 64 << 20,
        injected: 0.004,
        path: 0.002,
        ..Lossy::default()
    };
    let (trace, made) = lossy(&dir, &spec);
    let lines = made.text.lines().count();
    assert!(lines > 100_000, "{lines} lines");
    for name in ["flow.svg", "flow.html"] {
        let out = dir.join(name);
        let started = Instant::now();
        ok(&plot(&[
            trace.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]));
        let took = started.elapsed();
        let size = std::fs::metadata(&out).unwrap().len();
        eprintln!("{name}: {lines} lines in {took:?}, {size} bytes");
        assert!(took < Duration::from_secs(10), "{name} took {took:?}");
        assert!(size < 6 << 20, "{name} is {size} bytes");
    }
    let text = std::fs::read_to_string(dir.join("flow.svg")).unwrap();
    let doc = check_svg(&text);
    assert_eq!(marks(&doc, "injected-drop").len() as u64, made.drops);
}

#[test]
fn the_page_is_self_contained() {
    let dir = out_dir("page");
    let (trace, made) = lossy(&dir, &Lossy::default());
    let page = dir.join("flow.html");
    ok(&plot(&[
        trace.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]));
    let html = std::fs::read_to_string(&page).unwrap();
    for outside in [
        "<script src",
        "<link",
        "@import",
        "url(http",
        "href=\"http",
        "src=\"http",
    ] {
        assert!(!html.contains(outside), "the page loads {outside}");
    }
    // Every http(s) URL in it is the SVG namespace name.
    assert_eq!(
        html.matches("http").count(),
        html.matches("http://www.w3.org/2000/svg").count()
    );
    let svg_start = html.find("<svg ").unwrap();
    let svg_end = html.find("</svg>").unwrap() + "</svg>".len();
    let doc = check_svg(&html[svg_start..svg_end]);
    assert_eq!(marks(&doc, "injected-drop").len() as u64, made.drops);
}

/// Headless Chromium, or why not.
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        if found.is_some() {
            return found;
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "chromium is not installed, and CI must run this test (setup/bootstrap installs it)"
        );
    }
    eprintln!("skipped: chromium is not installed (setup/bootstrap installs it)");
    None
}

/// Runs chromium headless on `url` with `args`, at most 60 s; returns stdout and stderr.
fn headless(browser: &Path, profile: &Path, args: &[&str], url: &str) -> (String, String) {
    let mut child = Command::new("timeout")
        .args(["-k", "5", "60"])
        .arg(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::read_to_string(child.stdout.take().unwrap()).unwrap_or_default();
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap_or_default();
    let status = child.wait().unwrap();
    assert!(status.success(), "chromium failed ({status}): {stderr}");
    (stdout, stderr)
}

/// Console errors and failed loads in chromium's log.
fn page_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("net::ERR_"))
        .collect()
}

/// Decodes the screenshot: (distinct colours, share of pixels in neither of the two commonest
/// colours: the page and the picture's backgrounds).
fn looks(png_path: &Path) -> (usize, f64) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let mut counts = std::collections::HashMap::<&[u8], usize>::new();
    for p in &pixels {
        *counts.entry(p).or_default() += 1;
    }
    let mut common: Vec<usize> = counts.values().copied().collect();
    common.sort_unstable_by(|a, b| b.cmp(a));
    let background: usize = common.iter().take(2).sum();
    (
        counts.len(),
        (pixels.len() - background) as f64 / pixels.len() as f64,
    )
}

#[test]
fn chromium_opens_the_svg_and_the_page_and_both_show_a_picture() {
    let Some(browser) = chromium() else { return };
    let dir = out_dir("chromium");
    let (trace, _) = lossy(&dir, &Lossy::default());
    let svg = dir.join("flow.svg");
    let page = dir.join("flow.html");
    ok(&plot(&[
        trace.to_str().unwrap(),
        "-o",
        svg.to_str().unwrap(),
    ]));
    ok(&plot(&[
        trace.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]));
    let profile = dir.join("profile");

    // The page's script ran to its end: it marks the body with the pictures it set up.
    let page_url = format!("file://{}", page.display());
    let (dom, log) = headless(
        &browser,
        &profile,
        &["--dump-dom", "--virtual-time-budget=5000"],
        &page_url,
    );
    assert!(
        dom.contains("data-plot-ready=\"1\""),
        "the script did not run: {}",
        &dom[..dom.len().min(300)]
    );
    assert!(
        dom.contains("whole connection:"),
        "the script did not write the range"
    );
    assert!(page_errors(&log).is_empty(), "{:?}", page_errors(&log));
    // Zoomed by the link: the time axis is the script's, the lines stretched, the marks moved.
    let zoomed = format!("{page_url}#t=1.0-2.0");
    let (dom, _) = headless(
        &browser,
        &profile,
        &["--dump-dom", "--virtual-time-budget=5000"],
        &zoomed,
    );
    assert!(
        dom.contains("zoomed: 1.00–2.00 s"),
        "not zoomed: {}",
        &dom[..dom.len().min(300)]
    );
    assert!(
        dom.contains("class=\"zoom\" transform=\"matrix("),
        "lines not stretched"
    );
    assert!(
        dom.contains("class=\"jsaxis\"><line"),
        "no time ticks written"
    );

    for (url, shot, size) in [
        (
            format!("file://{}", svg.display()),
            dir.join("svg.png"),
            "1400,1380",
        ),
        (page_url, dir.join("html.png"), "1440,1500"),
        (zoomed, dir.join("html-zoomed.png"), "1440,1500"),
    ] {
        let (_, log) = headless(
            &browser,
            &profile,
            &[
                &format!("--screenshot={}", shot.display()),
                &format!("--window-size={size}"),
            ],
            &url,
        );
        assert!(
            page_errors(&log).is_empty(),
            "{url}: {:?}",
            page_errors(&log)
        );
        let (colours, drawn) = looks(&shot);
        eprintln!(
            "{}: {colours} colours, {:.1}% drawn",
            shot.display(),
            drawn * 100.0
        );
        assert!(colours > 20, "{url}: only {colours} colours");
        assert!(
            drawn > 0.03,
            "{url}: {:.2}% of the pixels drawn",
            drawn * 100.0
        );
    }
}
