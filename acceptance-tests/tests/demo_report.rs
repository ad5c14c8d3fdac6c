//! The demo's HTML report, as a person sees it: `scripts/demo-report` on a
//! drill with a known shape, rendered by headless Chromium (Debian's, which
//! `scripts/bootstrap test` installs) to a screenshot, whose pixels must
//! show the primary's bars before the kill line and the secondary's after
//! it, and the errors in between. The screenshot is kept under the build's
//! temporary directory for a look.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tandem_acceptance::repo_root;

/// Longest Chromium may take to start, render and write the screenshot.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);

/// A drill at 100 requests per second: the primary answers for 1.5 s, the
/// kill at 1.5 s fails requests for 100 ms, then the secondary answers.
fn drill() -> serde_json::Value {
    let mut requests = Vec::new();
    for i in 0..500 {
        let end = 0.01 * i as f64 + 0.005;
        let (status, replica) = if end < 1.5 {
            (200, Some("eu-west-1"))
        } else if end < 1.6 {
            (502, None)
        } else {
            (200, Some("us-east-1"))
        };
        requests.push(json!([end - 0.004, end, status, replica]));
    }
    json!({"primary": "eu-west-1", "secondary": "us-east-1", "killed_at": 1.5,
           "duration": 5.0, "requests": requests})
}

/// Runs Chromium headless (the flags this kind of machine needs: no
/// sandbox as root, no network chatter) to screenshot `page`.
fn screenshot(page: &Path, png: &Path, profile: &Path) {
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1000,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium (scripts/bootstrap test installs Debian's)");
    let deadline = Instant::now() + CHROMIUM_TIMEOUT;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium took over {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(png.exists(), "chromium wrote no screenshot");
}

/// Reads the PNG (8-bit RGB or RGBA, as Chromium writes) and measures the
/// chart: where the kill line is, and how many pixels of each series lie
/// left and right of it. In Python, whose zlib the PNG needs.
const MEASURE: &str = r#"
import json, struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n"
pos, idat, w, h, ctype = 8, b"", 0, 0, 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8]); body = data[pos + 8:pos + 8 + n]; pos += 12 + n
    if kind == b"IHDR":
        w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
    elif kind == b"IDAT":
        idat += body
bpp = 4 if ctype == 6 else 3
raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(line); prev = line
colours = {"primary": (0x1f, 0x6f, 0xeb), "secondary": (0x2d, 0xa4, 0x4e), "errors": (0xcf, 0x22, 0x2e), "kill": (0x82, 0x50, 0xdf)}
near = lambda px, c: all(abs(px[k] - c[k]) <= 6 for k in range(3))
columns = {name: [0] * w for name in colours}
for line in rows:
    for x in range(w):
        px = line[x * bpp:x * bpp + 3]
        for name, c in colours.items():
            if near(px, c):
                columns[name][x] += 1
kill_x = max(range(w), key=lambda x: columns["kill"][x])
side = lambda name: [sum(columns[name][:kill_x - 2]), sum(columns[name][kill_x + 3:])]
print(json.dumps({"width": w, "height": h, "kill_x": kill_x, "kill_px": columns["kill"][kill_x],
                  **{name: side(name) for name in ("primary", "secondary", "errors")}}))
"#;

#[test]
fn the_report_shows_the_failover_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (drill_json, summary_json, page) = (
        dir.path().join("drill.json"),
        dir.path().join("summary.json"),
        dir.path().join("report.html"),
    );
    std::fs::write(&drill_json, drill().to_string()).unwrap();
    std::fs::write(
        &summary_json,
        json!({"title": "Tandem demo", "rows": [["Failover (measured)", "first answer 100 ms after the kill"]]})
            .to_string(),
    )
    .unwrap();
    let out = Command::new("python3")
        .arg(repo_root().join("scripts/demo-report"))
        .args([&drill_json, &summary_json, &page])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("first answer 100 ms after the kill"));
    assert!(html.contains("eu-west-1 origin killed"));

    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-report.png");
    let _ = std::fs::remove_file(&png);
    screenshot(&page, &png, &dir.path().join("chromium-profile"));

    let measured = Command::new("python3")
        .arg("-c")
        .arg(MEASURE)
        .arg(&png)
        .output()
        .unwrap();
    assert!(
        measured.status.success(),
        "{}",
        String::from_utf8_lossy(&measured.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&measured.stdout).unwrap();
    let n = |k: &str, i: usize| m[k][i].as_u64().unwrap();
    assert_eq!(
        (m["width"].as_u64(), m["height"].as_u64()),
        (Some(1000), Some(1000)),
        "{m}"
    );
    assert!(m["kill_px"].as_u64().unwrap() > 100, "no kill line: {m}");
    // The chart's zero is 1.5 s into a 5 s plot 820 px wide from x = 84.
    let kill_x = m["kill_x"].as_u64().unwrap();
    assert!(
        (300..=360).contains(&kill_x),
        "kill line at x = {kill_x}: {m}"
    );
    // Before the kill: the primary's bars, none of the secondary's; after
    // it, the other way round (a legend swatch of each sits below the
    // chart, on the left: a few hundred pixels).
    assert!(n("primary", 0) > 20 * n("primary", 1).max(1), "{m}");
    assert!(n("secondary", 1) > 20 * n("secondary", 0).max(1), "{m}");
    assert!(
        n("primary", 0) > 30_000 && n("secondary", 1) > 100_000,
        "{m}"
    );
    assert!(
        n("errors", 1) > 1_000,
        "the errors' bar after the kill: {m}"
    );
    eprintln!("screenshot: {} ({m})", png.display());
}
