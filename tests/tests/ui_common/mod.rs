//! What the end-to-end tests of `fleetctl ui` (`graphs.rs`, `ui_policies.rs`) share: a console
//! started against a collector, and a small HTTP/1.1 client.

#![allow(dead_code)] // Each test file uses its own part of it.

use std::path::Path;
use std::time::Duration;

use fleet_tests::{bin, procs};

/// `fleetctl --collector URL ARGS... ui --listen 127.0.0.1:0` (ARGS: TLS settings), its log in
/// `dir/ui.log`: the process and the address it serves on.
pub fn start_ui(url: &str, args: &[String], dir: &Path) -> (procs::Proc, String) {
    start_ui_of(&bin("fleetctl"), url, args, dir)
}

/// As [`start_ui`], with the fleetctl at `program` (the benchmark compares two builds).
pub fn start_ui_of(
    program: &Path,
    url: &str,
    args: &[String],
    dir: &Path,
) -> (procs::Proc, String) {
    let mut command = std::process::Command::new(program);
    command.args(["--collector", url]);
    if args.is_empty() {
        command.arg("--insecure");
    }
    command
        .args(args)
        .args(["ui", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped());
    let mut ui = procs::Proc::start(&mut command, &dir.join("ui.log"));
    let line = ui.first_stdout_line();
    let addr = line
        .strip_prefix("serving on http://")
        .unwrap_or_else(|| panic!("first line {line:?}; log:\n{}", ui.log_text()))
        .to_owned();
    (ui, addr)
}

/// A GET of `path` from the console at `addr`: status code, content type and body.
pub fn get(addr: &str, path: &str) -> (u16, String, String) {
    request(addr, "GET", path, None)
}

/// One HTTP/1.1 request on loopback (`body`: JSON), read to the end: status, content type, body.
pub fn request(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String, String) {
    send(addr, method, path, "application/json", body)
}

/// A POST of a form (`key=value&...`, already encoded) to the console at `addr`.
pub fn post_form(addr: &str, path: &str, form: &str) -> (u16, String, String) {
    send(
        addr,
        "POST",
        path,
        "application/x-www-form-urlencoded",
        Some(form),
    )
}

fn send(
    addr: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: Option<&str>,
) -> (u16, String, String) {
    let head = format!("Content-Type: {content_type}\r\n");
    let (status, head, body) = exchange(addr, method, path, &head, body.unwrap_or(""));
    let text = String::from_utf8(body).expect("UTF-8");
    (
        status,
        header(&head, "content-type").unwrap_or_default(),
        text,
    )
}

/// A GET of `path` that accepts gzip (as a browser's does): the status, the answer's
/// `Content-Encoding` and `Vary` (empty when absent), and the body as sent (compressed or not).
pub fn get_gzip(addr: &str, path: &str) -> (u16, String, String, Vec<u8>) {
    let accept = "Accept-Encoding: gzip, deflate, br\r\n";
    let (status, head, body) = exchange(addr, "GET", path, accept, "");
    (
        status,
        header(&head, "content-encoding").unwrap_or_default(),
        header(&head, "vary").unwrap_or_default(),
        body,
    )
}

/// `bytes` gunzipped by `gzip -dc`, as text.
pub fn gunzip(bytes: &[u8]) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut gzip = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = gzip.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).expect("to gzip"));
    let out = gzip.wait_with_output().expect("gzip output");
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "gzip -dc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// One HTTP/1.1 request on loopback (`headers`: more header lines, each ending in CRLF), read to
/// the end of its answer: status, head, body (dechunked).
fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         {headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read up to the end of the body (chromedriver keeps the connection open).
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = s
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"));
        bytes.extend_from_slice(&chunk[..n]);
        if n == 0 || complete(&bytes) {
            break;
        }
    }
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let body = &bytes[split + 4..];
    let status = head[9..12].parse().unwrap();
    let body = if header(&head, "transfer-encoding").as_deref() == Some("chunked") {
        dechunk(body)
    } else {
        body.to_vec()
    };
    (status, head, body)
}

/// The value of header `name` (lower case) in `head`, lower-cased.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name)
            .then(|| v.trim().to_ascii_lowercase())
    })
}

/// Whether `bytes` hold a whole answer: its head and a body of its Content-Length, or a chunked
/// body up to its last chunk.
fn complete(bytes: &[u8]) -> bool {
    let Some(split) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..split]);
    let body = &bytes[split + 4..];
    if let Some(length) = header(&head, "content-length") {
        return body.len() >= length.parse::<usize>().unwrap_or(usize::MAX);
    }
    header(&head, "transfer-encoding").as_deref() == Some("chunked") && body.ends_with(b"0\r\n\r\n")
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..end]).unwrap().trim();
        let n = usize::from_str_radix(size, 16).unwrap();
        if n == 0 {
            break;
        }
        let rest = &body[end + 2..];
        out.extend_from_slice(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// A headless Chromium session through chromedriver's WebDriver HTTP API (W3C, plus
/// chromedriver's `se/log` for the browser console).
pub struct Browser {
    addr: String,
    session: String,
    driver: procs::Proc,
}

impl Browser {
    pub fn start(
        chromedriver: &std::path::Path,
        chromium: &std::path::Path,
        dir: &std::path::Path,
    ) -> Browser {
        let port = fleet_tests::net::free_port();
        let driver = procs::Proc::start(
            std::process::Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(std::process::Stdio::null()),
            &dir.join("chromedriver.log"),
        );
        let addr = format!("127.0.0.1:{port}");
        fleet_tests::wait_for("chromedriver ready", Duration::from_secs(30), || {
            std::net::TcpStream::connect(&addr).ok()?;
            let (_, _, body) = request(&addr, "GET", "/status", None);
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            (v["value"]["ready"] == true).then_some(())
        });
        let profile = dir.join("chromium-profile");
        let capabilities = serde_json::json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1024",
                         format!("--user-data-dir={}", profile.display())],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let (status, _, body) = request(&addr, "POST", "/session", Some(&capabilities.to_string()));
        assert_eq!(status, 200, "new session: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let session = v["value"]["sessionId"].as_str().unwrap().to_owned();
        Browser {
            addr,
            session,
            driver,
        }
    }

    /// A command of this session: its `value`.
    pub fn call(&self, method: &str, command: &str, body: serde_json::Value) -> serde_json::Value {
        let path = format!("/session/{}/{command}", self.session);
        let body = (!body.is_null()).then(|| body.to_string());
        let (status, _, answer) = request(&self.addr, method, &path, body.as_deref());
        assert_eq!(status, 200, "{method} {command}: {answer}");
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
        v["value"].clone()
    }

    pub fn go(&self, url: &str) {
        self.call("POST", "url", serde_json::json!({ "url": url }));
    }

    pub fn url(&self) -> String {
        self.call("GET", "url", serde_json::Value::Null)
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn script(&self, js: &str) -> serde_json::Value {
        self.call(
            "POST",
            "execute/sync",
            serde_json::json!({ "script": js, "args": [] }),
        )
    }

    /// The browser console's errors since the last call.
    pub fn console_errors(&self) -> Vec<serde_json::Value> {
        self.call("POST", "se/log", serde_json::json!({ "type": "browser" }))
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .cloned()
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends Chromium; chromedriver itself is stopped by its Proc.
        let path = format!("/session/{}", self.session);
        let _ = request(&self.addr, "DELETE", &path, None);
        let _ = self.driver.term(Duration::from_secs(10));
    }
}
