//! Which NTP servers this host uses, from its time daemon's configuration. The parsers are pure
//! (text in, `HOST:PORT` strings out); [`discover`] reads the files.
//!
//! Servers given to the agent (`--ntp-server HOST:PORT` or the config file) replace discovery
//! altogether.
//!
//! # What is read
//!
//! The first daemon, in this order, whose configuration names at least one server:
//!
//! 1. **chrony**: `chrony/chrony.conf`, else `chrony.conf` (Debian, then Red Hat). The `server`,
//!    `pool` and `peer` directives (case-insensitive, as chrony reads them), with their `port N`
//!    option (default 123); other options are ignored. `include PATTERN` (a `*`/`?` wildcard in
//!    the last path component), `confdir DIR...` (its `*.conf` files) and `sourcedir DIR` (its
//!    `*.sources` files) are followed, as chronyd does at start, to a depth of
//!    [`MAX_INCLUDE_DEPTH`]. Debian's default, for example:
//!
//!    ```text
//!    confdir /etc/chrony/conf.d
//!    pool 2.debian.pool.ntp.org iburst
//!    sourcedir /run/chrony-dhcp
//!    sourcedir /etc/chrony/sources.d
//!    ```
//!
//!    gives `2.debian.pool.ntp.org:123`, then whatever the `conf.d` and `sources.d` files add.
//!    Paths under `/etc` are looked up under `etc_root`; other absolute paths (the DHCP-provided
//!    `/run/chrony-dhcp`) only when `etc_root` is `/etc` itself.
//! 2. **ntpd / NTPsec**: `ntpsec/ntp.conf`, else `ntp.conf`: `server`, `pool` and `peer` lines
//!    (`server -4 HOST` flags are skipped; reference clocks, `127.127.T.U`, are not servers).
//!    `includefile` is not followed (rare; say `--ntp-server` instead).
//! 3. **systemd-timesyncd**: `systemd/timesyncd.conf` then `systemd/timesyncd.conf.d/*.conf` in
//!    name order, section `[Time]`: the `NTP=` lists (concatenated; an empty `NTP=` resets the
//!    list), or when there are none the `FallbackNTP=` list (the last one wins). The drop-in
//!    directories under `/run` and `/usr/lib`, the compiled-in fallback servers and the servers
//!    that networkd learns from DHCP are not seen.
//!
//! A pool name is listed as one server: the probe queries the first address it resolves to.
//! The result is de-duplicated, in the order found.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::packet::NTP_PORT;

/// How deep chrony's `include`/`confdir`/`sourcedir` are followed (guards against loops).
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// Most configuration files read for one discovery (a directory full of files stays cheap).
pub const MAX_FILES: usize = 256;
/// Configuration files larger than this are not read (chrony.conf is a few KiB).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// `host` and `port` as `HOST:PORT`, with an IPv6 address in brackets (`[::1]:123`).
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Splits `HOST:PORT`, `[V6]:PORT`, `HOST`, `[V6]` or a bare IPv6 address into host and port
/// (123 when absent). `None` when the port is not a number or the host is empty.
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => NTP_PORT,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return (!host.is_empty()).then(|| (host.to_string(), port));
    }
    let (host, port) = match s.matches(':').count() {
        0 => (s, NTP_PORT),
        1 => {
            let (h, p) = s.split_once(':')?;
            (h, p.parse().ok()?)
        }
        _ => (s, NTP_PORT), // a bare IPv6 address
    };
    (!host.is_empty() && !host.contains(char::is_whitespace)).then(|| (host.to_string(), port))
}

/// A server as `HOST:PORT` (see [`split_host_port`]), or `None` when it does not parse.
pub fn normalize_server(s: &str) -> Option<String> {
    split_host_port(s).map(|(h, p)| host_port(&h, p))
}

/// One line of a chrony configuration that matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChronyLine {
    /// `server`, `pool` or `peer`, as `HOST:PORT`.
    Source(String),
    /// `include PATTERN`: configuration files matching it.
    Include(String),
    /// `confdir DIR...`: the `*.conf` files of these directories, in name order (a name found
    /// in an earlier directory hides the same name in later ones).
    ConfDir(Vec<String>),
    /// `sourcedir DIR`: the `*.sources` files of this directory (source directives only).
    SourceDir(String),
}

/// Parses chrony configuration text (`chrony.conf(5)`) into its sources and the files it pulls
/// in, in file order (chronyd reads an included file where the directive stands). Comment lines
/// start with `#`, `!`, `;` or `%`.
///
/// ```text
/// server ntp1.example.com iburst
/// server 2001:db8::123 port 1123 minpoll 4
/// pool 2.debian.pool.ntp.org iburst maxsources 4
/// ```
///
/// gives sources `ntp1.example.com:123`, `[2001:db8::123]:1123`, `2.debian.pool.ntp.org:123`.
pub fn parse_chrony(text: &str) -> Vec<ChronyLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', '!', ';', '%']) {
            continue;
        }
        let mut words = line.split_whitespace();
        let Some(directive) = words.next() else {
            continue;
        };
        let args: Vec<&str> = words.collect();
        let Some(first) = args.first() else { continue };
        match directive.to_ascii_lowercase().as_str() {
            "server" | "pool" | "peer" => {
                let mut port = NTP_PORT;
                let mut opts = args[1..].iter();
                while let Some(o) = opts.next() {
                    if o.eq_ignore_ascii_case("port") {
                        if let Some(p) = opts.next().and_then(|p| p.parse().ok()) {
                            port = p;
                        }
                    }
                }
                out.push(ChronyLine::Source(host_port(first, port)));
            }
            "include" => out.push(ChronyLine::Include(first.to_string())),
            "confdir" => out.push(ChronyLine::ConfDir(
                args.iter().map(|s| s.to_string()).collect(),
            )),
            "sourcedir" => out.push(ChronyLine::SourceDir(first.to_string())),
            _ => {}
        }
    }
    out
}

/// Parses ntpd's or NTPsec's `ntp.conf`: the `server`, `pool` and `peer` lines.
///
/// ```text
/// pool 0.debian.pool.ntp.org iburst
/// server -6 2001:db8::1 iburst
/// server 127.127.1.0        # the local clock driver: not a server
/// ```
///
/// gives `0.debian.pool.ntp.org:123` and `[2001:db8::1]:123`.
pub fn parse_ntpd(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(directive) = words.next() else {
            continue;
        };
        if !matches!(directive, "server" | "pool" | "peer") {
            continue;
        }
        let Some(host) = words.find(|w| !w.starts_with('-')) else {
            continue;
        };
        if host.starts_with("127.127.") {
            continue;
        }
        out.push(host_port(host, NTP_PORT));
    }
    out
}

/// The `[Time]` settings of one `timesyncd.conf` file, in order: `(key, value)` for `NTP` and
/// `FallbackNTP`.
fn timesyncd_settings(text: &str) -> Vec<(&'static str, Vec<String>)> {
    let mut out = Vec::new();
    let mut in_time = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with('[') {
            in_time = line == "[Time]";
            continue;
        }
        if !in_time {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let key = match k.trim() {
            "NTP" => "NTP",
            "FallbackNTP" => "FallbackNTP",
            _ => continue,
        };
        let list = v.split_whitespace().filter_map(normalize_server).collect();
        out.push((key, list));
    }
    out
}

/// Parses systemd-timesyncd's configuration: the main file's text then its drop-ins', in the
/// order systemd reads them. Returns the `NTP=` servers, or the `FallbackNTP=` ones when there
/// are none.
///
/// ```text
/// [Time]
/// NTP=time1.example.com time2.example.com
/// FallbackNTP=0.debian.pool.ntp.org
/// ```
///
/// gives `time1.example.com:123`, `time2.example.com:123`.
pub fn parse_timesyncd<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut ntp: Vec<String> = Vec::new();
    let mut fallback: Vec<String> = Vec::new();
    for text in texts {
        for (key, list) in timesyncd_settings(text) {
            match (key, list.is_empty()) {
                ("NTP", true) => ntp.clear(),
                ("NTP", false) => ntp.extend(list),
                (_, _) => fallback = list,
            }
        }
    }
    if ntp.is_empty() {
        fallback
    } else {
        ntp
    }
}

/// The servers this host's time daemon is configured with (see the module doc), as `HOST:PORT`.
/// `etc_root` is the directory that stands for `/etc` (`/etc` on a real host, a fixture tree in
/// tests). Missing or unreadable files are skipped; empty when nothing is configured.
pub fn discover(etc_root: &Path) -> Vec<String> {
    let mut reader = Reader {
        etc_root,
        files_read: 0,
    };
    let chrony = reader.chrony(etc_root);
    if !chrony.is_empty() {
        return dedup(chrony);
    }
    for p in ["ntpsec/ntp.conf", "ntp.conf"] {
        if let Some(text) = reader.read(&etc_root.join(p)) {
            let servers = parse_ntpd(&text);
            if !servers.is_empty() {
                return dedup(servers);
            }
        }
    }
    let mut texts = Vec::new();
    if let Some(t) = reader.read(&etc_root.join("systemd/timesyncd.conf")) {
        texts.push(t);
    }
    for f in list_dir(&etc_root.join("systemd/timesyncd.conf.d"), "*.conf") {
        if let Some(t) = reader.read(&f) {
            texts.push(t);
        }
    }
    dedup(parse_timesyncd(texts.iter().map(String::as_str)))
}

fn dedup(v: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    v.into_iter().filter(|s| seen.insert(s.clone())).collect()
}

/// Reads files with the bounds of [`MAX_FILES`] and [`MAX_FILE_BYTES`].
struct Reader<'a> {
    etc_root: &'a Path,
    files_read: usize,
}

impl Reader<'_> {
    fn read(&mut self, path: &Path) -> Option<String> {
        if self.files_read >= MAX_FILES {
            return None;
        }
        let meta = fs::metadata(path).ok()?;
        if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
            return None;
        }
        self.files_read += 1;
        let bytes = fs::read(path).ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Where a path named in a configuration file is, given `etc_root`.
    fn rebase(&self, p: &str) -> Option<PathBuf> {
        let path = Path::new(p);
        if self.etc_root == Path::new("/etc") {
            return Some(path.to_path_buf());
        }
        if let Ok(rest) = path.strip_prefix("/etc") {
            return Some(self.etc_root.join(rest));
        }
        if path.is_relative() {
            return Some(self.etc_root.join(path));
        }
        None
    }

    fn chrony(&mut self, etc_root: &Path) -> Vec<String> {
        for p in ["chrony/chrony.conf", "chrony.conf"] {
            let path = etc_root.join(p);
            if path.is_file() {
                let mut out = Vec::new();
                self.chrony_file(&path, false, 0, &mut out);
                return out;
            }
        }
        Vec::new()
    }

    /// Appends the sources of one chrony file and of what it includes, in order. A `.sources`
    /// file may hold source directives only.
    fn chrony_file(
        &mut self,
        path: &Path,
        sources_only: bool,
        depth: usize,
        out: &mut Vec<String>,
    ) {
        let Some(text) = self.read(path) else { return };
        for line in parse_chrony(&text) {
            let nested = !sources_only && depth < MAX_INCLUDE_DEPTH;
            match line {
                ChronyLine::Source(s) => out.push(s),
                ChronyLine::Include(pattern) if nested => {
                    let Some(p) = self.rebase(&pattern) else {
                        continue;
                    };
                    for f in glob_last(&p) {
                        self.chrony_file(&f, false, depth + 1, out);
                    }
                }
                ChronyLine::ConfDir(dirs) if nested => {
                    let mut names = HashSet::new();
                    let mut files = Vec::new();
                    for d in dirs {
                        let Some(d) = self.rebase(&d) else { continue };
                        for f in list_dir(&d, "*.conf") {
                            if names.insert(f.file_name().map(|n| n.to_os_string())) {
                                files.push(f);
                            }
                        }
                    }
                    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
                    for f in files {
                        self.chrony_file(&f, false, depth + 1, out);
                    }
                }
                ChronyLine::SourceDir(d) if nested => {
                    let Some(d) = self.rebase(&d) else { continue };
                    for f in list_dir(&d, "*.sources") {
                        self.chrony_file(&f, true, depth + 1, out);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The files of `dir` whose names match `pattern`, sorted by name.
fn list_dir(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| wildcard(pattern, n)))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// `path` itself, or when its last component holds `*` or `?`, the matching files.
fn glob_last(path: &Path) -> Vec<PathBuf> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !name.contains(['*', '?']) {
        return vec![path.to_path_buf()];
    }
    list_dir(path.parent().unwrap_or(Path::new("/")), name)
}

/// Shell-style matching of `*` (any run) and `?` (one character); hidden files never match a
/// leading wildcard.
fn wildcard(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            split_host_port("a.example:123"),
            Some(("a.example".into(), 123))
        );
        assert_eq!(
            split_host_port("a.example"),
            Some(("a.example".into(), 123))
        );
        assert_eq!(split_host_port("[::1]:1123"), Some(("::1".into(), 1123)));
        assert_eq!(split_host_port("[::1]"), Some(("::1".into(), 123)));
        assert_eq!(
            split_host_port("2001:db8::1"),
            Some(("2001:db8::1".into(), 123))
        );
        assert_eq!(split_host_port("127.0.0.1:99999"), None);
        assert_eq!(split_host_port(":123"), None);
        assert_eq!(split_host_port("[::1]x"), None);
        assert_eq!(
            normalize_server("2001:db8::1").as_deref(),
            Some("[2001:db8::1]:123")
        );
        assert_eq!(
            normalize_server("10.0.0.1").as_deref(),
            Some("10.0.0.1:123")
        );
    }

    #[test]
    fn chrony_sources_and_ports() {
        let conf = parse_chrony(
            "# Debian's default, plus some\n\
             ! pool commented.example\n\
             confdir /etc/chrony/conf.d\n\
             pool 2.debian.pool.ntp.org iburst\n\
             sourcedir /run/chrony-dhcp\n\
             SERVER ntp1.example.com iburst minpoll 4\n\
             server 2001:db8::123 port 1123 minpoll 4\n\
             peer 10.0.0.2 key 1 port 11123\n\
             server\n\
             keyfile /etc/chrony/chrony.keys\n\
             include /etc/chrony/extra/*.conf\n\
             driftfile /var/lib/chrony/chrony.drift\n",
        );
        use ChronyLine::*;
        assert_eq!(
            conf,
            [
                ConfDir(vec!["/etc/chrony/conf.d".into()]),
                Source("2.debian.pool.ntp.org:123".into()),
                SourceDir("/run/chrony-dhcp".into()),
                Source("ntp1.example.com:123".into()),
                Source("[2001:db8::123]:1123".into()),
                Source("10.0.0.2:11123".into()),
                Include("/etc/chrony/extra/*.conf".into()),
            ]
        );
    }

    #[test]
    fn ntpd_sources() {
        let servers = parse_ntpd(
            "driftfile /var/lib/ntp/ntp.drift\n\
             pool 0.debian.pool.ntp.org iburst\n\
             #server commented.example\n\
             server -6 2001:db8::1 iburst   # v6 only\n\
             server 127.127.1.0\n\
             fudge 127.127.1.0 stratum 10\n\
             restrict default kod nomodify\n\
             peer 10.0.0.9\n",
        );
        assert_eq!(
            servers,
            [
                "0.debian.pool.ntp.org:123",
                "[2001:db8::1]:123",
                "10.0.0.9:123"
            ]
        );
    }

    #[test]
    fn timesyncd_lists() {
        let main = "[Time]\n#NTP=\nFallbackNTP=0.debian.pool.ntp.org 1.debian.pool.ntp.org\n";
        assert_eq!(
            parse_timesyncd([main]),
            ["0.debian.pool.ntp.org:123", "1.debian.pool.ntp.org:123"]
        );
        let dropin = "[Time]\nNTP=time1.example.com 192.0.2.1\nNTP=time2.example.com\n";
        assert_eq!(
            parse_timesyncd([main, dropin]),
            [
                "time1.example.com:123",
                "192.0.2.1:123",
                "time2.example.com:123"
            ]
        );
        let reset = "[Time]\nNTP=\nNTP=only.example\n[Other]\nNTP=not.this\n";
        assert_eq!(parse_timesyncd([main, dropin, reset]), ["only.example:123"]);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*.conf", "a.conf"));
        assert!(!wildcard("*.conf", "a.conf.bak"));
        assert!(!wildcard("*.conf", ".hidden.conf"));
        assert!(wildcard("a?c*", "abcdef"));
        assert!(wildcard("*", "x"));
        assert!(!wildcard("*.sources", "x.conf"));
        assert!(wildcard("*a*b", "xaxxab"));
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn discover_follows_chrony_includes() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path();
        write(
            etc,
            "chrony/chrony.conf",
            "confdir /etc/chrony/conf.d\n\
             pool 2.debian.pool.ntp.org iburst\n\
             sourcedir /run/chrony-dhcp\n\
             sourcedir /etc/chrony/sources.d\n\
             include /etc/chrony/extra/*.conf\n\
             include /etc/chrony/chrony.conf\n",
        );
        write(etc, "chrony/conf.d/10-a.conf", "server a.example iburst\n");
        write(
            etc,
            "chrony/conf.d/20-b.conf",
            "server b.example port 1123\n",
        );
        write(etc, "chrony/conf.d/ignored.txt", "server no.example\n");
        write(
            etc,
            "chrony/sources.d/local.sources",
            "server c.example\nconfdir /etc/chrony/never\n",
        );
        write(etc, "chrony/never/x.conf", "server never.example\n");
        write(
            etc,
            "chrony/extra/e.conf",
            "server a.example iburst\nserver e.example\n",
        );
        // ntpd and timesyncd are also configured, but chrony comes first.
        write(etc, "ntp.conf", "server ntpd.example\n");
        write(
            etc,
            "systemd/timesyncd.conf",
            "[Time]\nNTP=timesyncd.example\n",
        );
        assert_eq!(
            discover(etc),
            [
                "a.example:123",
                "b.example:1123",
                "2.debian.pool.ntp.org:123",
                "c.example:123",
                "e.example:123"
            ]
        );
    }

    #[test]
    fn discover_falls_back_to_ntpd_then_timesyncd() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path();
        assert!(discover(etc).is_empty());
        write(
            etc,
            "systemd/timesyncd.conf",
            "[Time]\nFallbackNTP=fallback.example\n",
        );
        assert_eq!(discover(etc), ["fallback.example:123"]);
        write(
            etc,
            "systemd/timesyncd.conf.d/50-site.conf",
            "[Time]\nNTP=site.example:1123\n",
        );
        assert_eq!(discover(etc), ["site.example:1123"]);
        // An ntp.conf without servers does not hide timesyncd.
        write(etc, "ntp.conf", "driftfile /var/lib/ntp/drift\n");
        assert_eq!(discover(etc), ["site.example:1123"]);
        write(etc, "ntpsec/ntp.conf", "pool 0.pool.ntp.org iburst\n");
        assert_eq!(discover(etc), ["0.pool.ntp.org:123"]);
        // Nor does a chrony.conf with no sources at all.
        write(etc, "chrony.conf", "driftfile /var/lib/chrony/drift\n");
        assert_eq!(discover(etc), ["0.pool.ntp.org:123"]);
        write(etc, "chrony.conf", "server chrony.example\n");
        assert_eq!(discover(etc), ["chrony.example:123"]);
    }
}
