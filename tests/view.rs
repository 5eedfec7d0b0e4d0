//! `cryomotion view` driven in headless Chromium over WebDriver (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs): the page loads with no network, a click on a
//! particle computes and saves its map, a polygon saves a STAR subset with exactly the particles
//! inside it (counted here from explore-latent-space's embedding.csv), files outside the run
//! are refused, and a port in use is named. A screenshot is saved in the test output.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use cryomotion::io::mrc::read_map;
use cryomotion::io::relion::read_particles_star;
use cryomotion::reconstruction::fsc;

use crate::deformations::trained_example;

/// Kills a child process when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request; the status and body of the answer (read by Content-Length or
/// chunks: chromedriver may keep the connection open).
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(180))).unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (mut length, mut chunked) = (None, false);
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(v) = header.strip_prefix("content-length:") {
            length = Some(v.trim().parse::<usize>().unwrap());
        }
        chunked |= header.starts_with("transfer-encoding:") && header.contains("chunked");
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let size = usize::from_str_radix(line.trim(), 16).unwrap();
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        reader.read_exact(&mut body).unwrap();
    } else {
        reader.read_to_end(&mut body).unwrap();
    }
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A WebDriver session.
struct Browser {
    port: u16,
    session: String,
}

impl Browser {
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, text) =
            http(self.port, method, &format!("/session/{}{path}", self.session), &body.to_string());
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}"));
        assert_eq!(status, 200, "{method} {path}: {value}");
        value["value"].clone()
    }

    fn script(&self, source: &str) -> Value {
        self.call("POST", "/execute/sync", json!({ "script": source, "args": [] }))
    }

    fn wait_for(&self, condition: &str, what: &str) -> Value {
        let start = Instant::now();
        loop {
            let value = self.script(&format!("return ({condition});"));
            if !value.is_null() && value != json!(false) {
                return value;
            }
            let status = self.script("return document.getElementById('status').textContent;");
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "timed out waiting for {what}; page says {status}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A mouse click at page coordinates.
    fn click_at(&self, at: [f64; 2]) {
        let (x, y) = (at[0].round() as i64, at[1].round() as i64);
        let size = self.script("return [window.innerWidth, window.innerHeight];");
        assert!(
            x >= 0 && y >= 0 && x < size[0].as_i64().unwrap() && y < size[1].as_i64().unwrap(),
            "({x}, {y}) outside {size}"
        );
        self.call(
            "POST",
            "/actions",
            json!({ "actions": [{ "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" },
                "actions": [
                    { "type": "pointerMove", "duration": 0, "origin": "viewport", "x": x, "y": y },
                    { "type": "pointerDown", "button": 0 },
                    { "type": "pointerUp", "button": 0 }
                ] }] }),
        );
    }

    fn click(&self, css: &str) {
        let element = self.call("POST", "/element", json!({ "using": "css selector", "value": css }));
        let id = element.as_object().unwrap().values().next().unwrap().as_str().unwrap().to_string();
        self.call("POST", &format!("/element/{id}/click"), json!({}));
    }

    fn page_of(&self, point: [f64; 2]) -> [f64; 2] {
        let at = self.script(&format!("return viewer.pageOf([{}, {}]);", point[0], point[1]));
        [at[0].as_f64().unwrap(), at[1].as_f64().unwrap()]
    }
}

/// Standard base64, as WebDriver sends screenshots.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = text.bytes().filter(|&c| c != b'=' && !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|&c| value(c) as u32).collect();
        let n = v.iter().enumerate().fold(0u32, |acc, (i, &x)| acc | (x << (18 - 6 * i)));
        out.extend(n.to_be_bytes()[1..chunk.len()].iter());
    }
    out
}

/// PC1, PC2 of half 1's particles, from explore-latent-space's embedding.csv.
fn embedding(run: &Path) -> Vec<[f64; 2]> {
    let text = std::fs::read_to_string(run.join("explore/half1/embedding.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<f64> = l.split(',').take(3).map(|v| v.parse().unwrap()).collect();
            [f[1], f[2]]
        })
        .collect()
}

/// A run directory of the trained example with its explore and backprojection outputs.
fn run_copy(dir: &Path) -> PathBuf {
    let root = trained_example();
    let run = dir.join("run");
    assert!(Command::new("cp").arg("-r").arg(root.join("run")).arg(&run).status().unwrap().success());
    for step in ["explore", "backprojection"] {
        let from = root.join("demo_outputs").join(step);
        assert!(Command::new("cp").arg("-r").arg(&from).arg(&run).status().unwrap().success());
    }
    run
}

#[test]
fn the_viewer_works_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_copy(dir.path());
    std::fs::write(dir.path().join("secret.txt"), "outside the run").unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_cryomotion"))
        .args(["view", run.to_str().unwrap(), "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    // kept open while the server runs
    let mut output = BufReader::new(server.stdout.take().unwrap());
    output.read_line(&mut first).unwrap();
    let _server = Running(server);
    let url =
        first.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_else(|| panic!("{first}"));
    let port: u16 = url.trim_end_matches('/').rsplit(':').next().unwrap().parse().unwrap();

    // files: inside the run served, outside refused
    assert_eq!(http(port, "GET", "/files/forward_deformations/training_log.csv", "").0, 200);
    let (status, text) = http(port, "GET", "/files/../secret.txt", "");
    assert_eq!(status, 403, "{text}");
    // the port in use is named
    let taken = Command::new(env!("CARGO_BIN_EXE_cryomotion"))
        .args(["view", run.to_str().unwrap(), "--port", &port.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&taken.stderr);
    assert!(!taken.status.success() && stderr.contains(&format!("port {port}")), "{stderr}");

    let driver_port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={driver_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian: apt-get install chromium chromium-driver; .ci/run installs them)");
    let _driver = Running(driver);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", driver_port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let capabilities = json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": {
        "binary": "/usr/bin/chromium",
        "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                 "--use-angle=swiftshader", "--enable-unsafe-swiftshader"] } } } });
    let (status, text) = http(driver_port, "POST", "/session", &capabilities.to_string());
    assert_eq!(status, 200, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    let browser =
        Browser { port: driver_port, session: created["value"]["sessionId"].as_str().unwrap().to_string() };
    browser.call("POST", "/url", json!({ "url": url }));
    browser.wait_for("window.viewer && window.viewer.ready", "the page to load");

    // a click on a particle: its map, saved as MRC
    let first_point = browser.script("return viewer.points()[0];");
    let first_point = [first_point[0].as_f64().unwrap(), first_point[1].as_f64().unwrap()];
    browser.click_at(browser.page_of(first_point));
    browser.wait_for(
        "viewer.picked === 0 && viewer.busy === 0 && !document.getElementById('save-map').disabled",
        "the map",
    );
    browser.click("#save-map");
    let saved = browser.wait_for("viewer.lastSaved", "the saved map");
    let saved = PathBuf::from(saved.as_str().unwrap());
    assert!(saved.starts_with(run.canonicalize().unwrap().join("view")), "{saved:?}");
    let map = read_map(&saved).unwrap();
    let consensus = read_map(trained_example().join("consensus/map.mrc")).unwrap();
    assert_eq!((map.volume.shape, map.voxel_size), (consensus.volume.shape, consensus.voxel_size));
    // the consensus moved, not something else: alike at low resolution, not identical
    let curve = fsc(&map.volume, &consensus.volume);
    assert!(curve[1..6].iter().all(|&c| c > 0.8) && map.volume.data != consensus.volume.data, "{curve:?}");
    // and the isosurface was drawn
    let drawn = browser.script(
        "const c = document.getElementById('surface'); const g = c.getContext('webgl');
         const px = new Uint8Array(4 * c.width * c.height);
         g.readPixels(0, 0, c.width, c.height, g.RGBA, g.UNSIGNED_BYTE, px);
         let n = 0; for (let i = 0; i < px.length; i += 4) if (px[i] < 250 || px[i + 1] < 250 || px[i + 2] < 250) n++;
         return n;",
    );
    assert!(drawn.as_u64().unwrap() > 2000, "{drawn} pixels of isosurface");

    // a polygon around the left half of the embedding: a STAR of exactly the particles inside
    browser.click("#mode-polygon");
    let points = embedding(&run);
    let mut xs: Vec<f64> = points.iter().map(|p| p[0]).collect();
    xs.sort_by(f64::total_cmp);
    let (y_lo, y_hi) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p[1]), b.max(p[1])));
    // 2% beyond the points: inside the plot's margin, so on the canvas
    let (dx, dy) = (0.02 * (xs[xs.len() - 1] - xs[0]), 0.02 * (y_hi - y_lo));
    let (lo, mid, y_lo, y_hi) = (xs[0] - dx, xs[xs.len() / 2], y_lo - dy, y_hi + dy);
    for corner in [[lo, y_lo], [mid, y_lo], [mid, y_hi], [lo, y_hi]] {
        browser.click_at(browser.page_of(corner));
    }
    browser.wait_for(
        "viewer.vertices.length === 4 && viewer.lastCount !== null && viewer.busy === 0",
        "the count",
    );
    let vertices: Vec<[f64; 2]> = browser
        .script("return viewer.vertices;")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| [v[0].as_f64().unwrap(), v[1].as_f64().unwrap()])
        .collect();
    // even-odd rule, counted here from the embedding explore-latent-space wrote
    let inside = |p: &[f64; 2]| {
        let mut odd = false;
        for i in 0..vertices.len() {
            let (a, b) = (vertices[i], vertices[(i + 3) % 4]);
            if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
                odd = !odd;
            }
        }
        odd
    };
    let expected = points.iter().filter(|p| inside(p)).count();
    assert!(expected > 50 && expected < points.len(), "{expected} of {}", points.len());
    assert_eq!(browser.script("return viewer.lastCount;").as_u64().unwrap() as usize, expected);
    browser.script("viewer.lastSaved = null;");
    browser.click("#save-star");
    let star = browser.wait_for("viewer.lastSaved", "the STAR subset");
    let subset = read_particles_star(star.as_str().unwrap()).unwrap();
    assert_eq!(subset.len(), expected);
    assert!(subset.particles.iter().all(|p| p.random_subset == Some(1)), "half 1's particles only");

    let shot = browser.call("GET", "/screenshot", json!({}));
    // a path along PC1: a series of maps and a multi-model PDB
    browser.click("#mode-path");
    for x in [lo + dx, mid] {
        browser.click_at(browser.page_of([x, 0.5 * (y_lo + y_hi)]));
    }
    browser.wait_for(
        "viewer.vertices.length === 2 && !document.getElementById('save-path').disabled",
        "the path",
    );
    browser.script("viewer.lastSaved = null; document.getElementById('steps').value = 4;");
    browser.click("#save-path");
    let series = PathBuf::from(browser.wait_for("viewer.lastSaved", "the path's maps").as_str().unwrap());
    for s in 0..4 {
        assert!(series.join(format!("map_{s:03}.mrc")).is_file(), "map {s} of {series:?}");
    }
    let models = cryomotion::io::atoms::read_atoms(series.join("trajectory.pdb")).unwrap().models;
    assert_eq!(models.len(), 4);
    let png = base64(shot.as_str().unwrap());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("view_screenshot.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {}", path.display());
    browser.call("DELETE", "", json!({}));
}
