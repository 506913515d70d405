//! The sampling loop's state: open files, one reused read buffer, the previous reading.
//!
//! The shared sources are read by name, in a fixed order (uptime first); then each activity's
//! own files ([`SarActivity::FILES`]), in the order of the activity list.
//!
//! Cost per [`Sampler::sample`]: two `pread`s per open file (the content, then end of file),
//! parsing into the reading kept from two samples ago (its vectors and name strings are reused),
//! and the output records. `/sys` is only read when a device or interface first appears, and
//! for link speed every [`sysfs::LINK_REFRESH_SAMPLES`] samples. No threads.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::activity::{self, SampleOut, SarActivity, VisitOwn};
use super::diskstats::{self, DiskKind};
use super::net_dev::{self, Duplex};
use super::parse::ParseError;
use super::{loadavg, meminfo, stat, sysfs, uptime, vmstat, Reading, SourceError};

/// One `/proc` file kept open and re-read from offset 0.
struct ProcFile {
    path: PathBuf,
    file: File,
    /// Made by the kernel in one piece: a short read is all of it (see [`ProcFile::read`]).
    whole: bool,
}

/// A file the kernel makes in one piece (seq_file's `single_open`: `uptime`, `stat`, `meminfo`,
/// `loadavg`, `pressure/*`), or record by record (`vmstat`, `diskstats`, `net/dev`).
const WHOLE: bool = true;
const RECORDS: bool = false;

impl ProcFile {
    fn open(path: PathBuf, whole: bool) -> Result<ProcFile, SourceError> {
        match File::open(&path) {
            Ok(file) => Ok(ProcFile { path, file, whole }),
            Err(source) => Err(SourceError::Open { path, source }),
        }
    }

    /// Opens an optional file: `None` when it is not there (or not readable).
    fn open_optional(path: PathBuf, whole: bool) -> Option<ProcFile> {
        File::open(&path)
            .ok()
            .map(|file| ProcFile { path, file, whole })
    }

    /// The whole file, read with positional reads from offset 0 (a `seek(0)` and a `read` in one
    /// system call) into `buf`, which keeps its size between calls. A file made record by
    /// record is read until a read returns nothing (one read stops at a page, short of the
    /// buffer, with records still to come); a file made in one piece ends at the first read
    /// shorter than the buffer (the kernel renders it whole, growing its own buffer until it
    /// fits, and hands out as much as was asked): one system call instead of two.
    fn read<'b>(&self, buf: &'b mut Vec<u8>) -> Result<&'b [u8], SourceError> {
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                let grown = (buf.len() * 2).max(16 * 1024);
                buf.resize(grown, 0);
            }
            match self.file.read_at(&mut buf[filled..], filled as u64) {
                Ok(0) => return Ok(&buf[..filled]),
                Ok(n) => {
                    filled += n;
                    if self.whole && filled < buf.len() {
                        return Ok(&buf[..filled]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(SourceError::Read {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
    }

    fn parse_error(&self, e: ParseError) -> SourceError {
        SourceError::Parse {
            path: self.path.clone(),
            what: e.0.to_owned(),
        }
    }
}

/// What `/sys` said about a block device, remembered while the device exists.
struct DiskInfo {
    major: u32,
    minor: u32,
    name: String,
    kind: DiskKind,
    label: String,
    seen: u64,
}

/// Speed and duplex of an interface, remembered while it exists.
struct LinkInfo {
    name: String,
    speed_mbps: u64,
    duplex: Duplex,
    read_at: u64,
    seen: u64,
}

/// Samples sar's activities. See the [module doc](super) for what is read and how.
pub struct Sampler {
    sys_root: PathBuf,
    uptime: ProcFile,
    stat: ProcFile,
    meminfo: ProcFile,
    vmstat: ProcFile,
    loadavg: ProcFile,
    diskstats: Option<ProcFile>,
    net_dev: Option<ProcFile>,
    /// The activities' own files, in the order of the activity list; `None` for an optional one
    /// that could not be opened.
    own_files: Vec<Option<ProcFile>>,
    /// Read buffer shared by all files (one file is parsed before the next is read).
    buf: Vec<u8>,
    /// The reading the next interval starts from.
    prev: Reading,
    /// The reading before `prev`, kept only for its allocations.
    spare: Reading,
    disks: Vec<DiskInfo>,
    links: Vec<LinkInfo>,
    /// Readings taken so far; the generation mark of the `/sys` caches.
    readings: u64,
    /// How many records the last sample made: the capacity of the next one's vector.
    records: usize,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("stat", &self.stat.path)
            .field("sys_root", &self.sys_root)
            .field("readings", &self.readings)
            .finish_non_exhaustive()
    }
}

impl Sampler {
    /// Opens the files under `proc_root` (and keeps them open), and takes the first reading:
    /// the baseline of the first [`sample`](Self::sample).
    ///
    /// # Errors
    /// [`SourceError`] naming the file when `stat`, `meminfo`, `vmstat`, `loadavg` or `uptime`
    /// cannot be opened, read, or lacks what sar needs (or a mandatory file of an activity).
    pub fn new(proc_root: &Path, sys_root: &Path) -> Result<Sampler, SourceError> {
        let mut s = Sampler::open(proc_root, sys_root)?;
        let mut first = Reading::default();
        s.read_into(&mut first)?;
        s.prev = first;
        Ok(s)
    }

    /// Opens the files without reading them.
    pub(super) fn open(proc_root: &Path, sys_root: &Path) -> Result<Sampler, SourceError> {
        let p = |name: &str| proc_root.join(name);
        let own_files = activity::own_files()
            .into_iter()
            .map(|(name, required, whole)| {
                if required {
                    ProcFile::open(p(name), whole).map(Some)
                } else {
                    Ok(ProcFile::open_optional(p(name), whole))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Sampler {
            sys_root: sys_root.to_path_buf(),
            uptime: ProcFile::open(p("uptime"), WHOLE)?,
            stat: ProcFile::open(p("stat"), WHOLE)?,
            meminfo: ProcFile::open(p("meminfo"), WHOLE)?,
            vmstat: ProcFile::open(p("vmstat"), RECORDS)?,
            loadavg: ProcFile::open(p("loadavg"), WHOLE)?,
            diskstats: ProcFile::open_optional(p("diskstats"), RECORDS),
            net_dev: ProcFile::open_optional(p("net/dev"), RECORDS),
            own_files,
            buf: Vec::new(),
            prev: Reading::default(),
            spare: Reading::default(),
            disks: Vec::new(),
            links: Vec::new(),
            readings: 0,
            records: 0,
        })
    }

    /// Reads everything again and computes every activity over the interval since the previous
    /// reading (the baseline taken by [`new`](Self::new) for the first call).
    ///
    /// # Errors
    /// [`SourceError`] when a mandatory file cannot be read or parsed. The previous reading is
    /// kept, so the next successful call covers the whole time since it.
    pub fn sample(&mut self) -> Result<SampleOut, SourceError> {
        let mut curr = std::mem::take(&mut self.spare);
        if let Err(e) = self.read_into(&mut curr) {
            self.spare = curr;
            return Err(e);
        }
        let mut records = Vec::with_capacity(self.records);
        let itv = activity::compute_into(&self.prev, &curr, &mut records);
        self.records = records.len();
        activity::carry_forward(&self.prev, &mut curr);
        self.spare = std::mem::replace(&mut self.prev, curr);
        Ok(SampleOut::new(itv, records))
    }

    /// The kernel's OOM kill count (`/proc/vmstat` `oom_kill`) as of the last reading.
    pub fn oom_kill(&self) -> Option<u64> {
        self.prev.vmstat.oom_kill
    }

    /// The last reading (what the last [`sample`](Self::sample) ended on).
    pub fn latest(&self) -> &Reading {
        &self.prev
    }

    /// Reads every file into `r`, reusing its allocations.
    pub(super) fn read_into(&mut self, r: &mut Reading) -> Result<(), SourceError> {
        self.readings += 1;
        // Uptime first, like sadc's record header: the interval brackets the counters read
        // right after it.
        let f = &self.uptime;
        r.uptime_cs = uptime::parse(f.read(&mut self.buf)?).map_err(|e| f.parse_error(e))?;
        let f = &self.stat;
        stat::parse_into(f.read(&mut self.buf)?, &mut r.stat).map_err(|e| f.parse_error(e))?;
        let f = &self.meminfo;
        r.meminfo = meminfo::parse(f.read(&mut self.buf)?).map_err(|e| f.parse_error(e))?;
        r.vmstat = vmstat::parse(self.vmstat.read(&mut self.buf)?);
        let f = &self.loadavg;
        r.loadavg = loadavg::parse(f.read(&mut self.buf)?).map_err(|e| f.parse_error(e))?;

        match self.diskstats.as_ref().map(|f| f.read(&mut self.buf)) {
            Some(Ok(text)) => {
                let disks = r.disks.get_or_insert_with(Vec::new);
                diskstats::parse_into(text, disks);
                self.classify_disks(disks);
            }
            _ => r.disks = None,
        }
        match self.net_dev.as_ref().map(|f| f.read(&mut self.buf)) {
            Some(Ok(text)) => {
                let net = r.net.get_or_insert_with(Vec::new);
                net_dev::parse_into(text, net);
                self.link_speeds(net);
            }
            _ => r.net = None,
        }
        let mut own = ReadOwn {
            files: &self.own_files,
            buf: &mut self.buf,
        };
        activity::visit_own(&mut own, &mut r.own)
    }

    /// Fills `kind` and `label` of each disk from the cache, asking `/sys` about new devices,
    /// and forgets devices that are gone (the cache is bounded by the devices present).
    fn classify_disks(&mut self, disks: &mut [diskstats::DiskStat]) {
        let now = self.readings;
        for d in disks.iter_mut() {
            let known = self
                .disks
                .iter_mut()
                .find(|i| i.major == d.major && i.minor == d.minor && i.name == d.name);
            let info = match known {
                Some(i) => i,
                None => {
                    let (kind, label) = sysfs::classify_disk(&self.sys_root, &d.name);
                    self.disks.push(DiskInfo {
                        major: d.major,
                        minor: d.minor,
                        name: d.name.clone(),
                        kind,
                        label,
                        seen: now,
                    });
                    let last = self.disks.len() - 1;
                    &mut self.disks[last]
                }
            };
            info.seen = now;
            d.kind = info.kind;
            if !info.label.is_empty() {
                d.label.push_str(&info.label);
            }
        }
        self.disks.retain(|i| i.seen == now);
    }

    /// Fills `speed_mbps` and `duplex` of each interface from the cache, reading `/sys` for new
    /// interfaces and stale entries, and forgets interfaces that are gone.
    fn link_speeds(&mut self, net: &mut [net_dev::NetDev]) {
        let now = self.readings;
        for n in net.iter_mut() {
            let at = match self.links.iter().position(|l| l.name == n.name) {
                Some(at) => at,
                None => {
                    self.links.push(LinkInfo {
                        name: n.name.clone(),
                        speed_mbps: 0,
                        duplex: Duplex::Unknown,
                        read_at: 0,
                        seen: now,
                    });
                    self.links.len() - 1
                }
            };
            let l = &mut self.links[at];
            if l.read_at == 0 || now - l.read_at >= sysfs::LINK_REFRESH_SAMPLES {
                (l.speed_mbps, l.duplex) = sysfs::link_info(&self.sys_root, &n.name);
                l.read_at = now;
            }
            l.seen = now;
            n.speed_mbps = l.speed_mbps;
            n.duplex = l.duplex;
        }
        self.links.retain(|l| l.seen == now);
    }
}

/// Reads each activity's own files into its reading, in the order of the activity list.
struct ReadOwn<'a> {
    /// The files of the activities not visited yet: each takes as many as it declares.
    files: &'a [Option<ProcFile>],
    buf: &'a mut Vec<u8>,
}

impl VisitOwn for ReadOwn<'_> {
    fn visit<A: SarActivity>(&mut self, own: &mut Option<A::Own>) -> Result<(), SourceError> {
        if A::FILES.is_empty() {
            // Nothing to read; its `own` stays `None`.
            return Ok(());
        }
        let (mine, rest) = self.files.split_at(A::FILES.len());
        self.files = rest;
        let slot = own.get_or_insert_with(A::Own::default);
        let mut complete = true;
        for (spec, file) in A::FILES.iter().zip(mine) {
            // A mandatory file is always open: `Sampler::open` fails otherwise.
            let Some(f) = file else {
                complete = false;
                break;
            };
            let parsed = f
                .read(self.buf)
                .and_then(|text| (spec.parse)(text, slot).map_err(|e| f.parse_error(e)));
            match parsed {
                Ok(()) => {}
                Err(e) if spec.required => return Err(e),
                Err(_) => {
                    complete = false;
                    break;
                }
            }
        }
        if !complete {
            *own = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line count and the keys (first word of each line) of a /proc file's text.
    fn shape(bytes: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
            .collect()
    }

    /// A file read as made in one piece has every line a plain read of it has, from a buffer
    /// that fits it (one read) and from one that does not (it grows and reads on); a file made
    /// record by record too. Real /proc: the numbers move, the lines do not.
    #[test]
    fn files_read_whole_or_by_records_have_every_line() {
        for (name, whole) in [
            ("meminfo", WHOLE),
            ("stat", WHOLE),
            ("vmstat", RECORDS),
            ("net/dev", RECORDS),
        ] {
            let path = Path::new("/proc").join(name);
            let file = ProcFile::open(path.clone(), whole).unwrap();
            let want = shape(&std::fs::read(&path).unwrap());
            for start in [0, 64] {
                let mut buf = vec![0; start];
                let got = shape(file.read(&mut buf).unwrap());
                assert_eq!(got, want, "{name} from a buffer of {start}");
            }
        }
    }
}
