//! [`Agent`]: the daemon's main loop, which owns the sources, the spool and the link, and
//! dispatches each event to one method.
//!
//! One task, no locks, no thread per source. The loop's `select!` only dispatches:
//!
//! ```text
//! interval tick ──► on_tick: Sampler::sample (+ top-oom, the clock) ──► pack ──► Spool::append
//! kmsg readable ──► on_kmsg_readable ─┐            (checked; synced once unacked for 5 s)
//! kmsg quiet    ──► on_kmsg_flush ────┴► OOM events ──► pack (split to fit) ──► Spool::append,
//!                                                       then the kmsg cursor
//! NTP measured  ──► on_ntp_measured: the clock rides with the next sample
//! policy pass   ──► on_policy_tick: policies applied to new processes (with the interval
//!                   tick's wakeup, and every POLICY_TICK between ticks further apart)
//! link event    ──► on_link_event: policy state on connect, policy sets from the collector
//! sync due      ──► Spool::sync_if_due: samples the collector did not ack in time are synced
//! SIGHUP        ──► on_sighup: reconnect, the TLS files read again
//! shutdown      ──► flush: send what is spooled, wait for acks, write the spool metadata
//! ```
//!
//! The timed events (the tick, policy passes between ticks, the kernel log's quiet window, a
//! spool sync) come from one [`Alarm`] set to the earliest of their deadlines: one wakeup each.
//!
//! After every event the link pumps the spool ([`Connection::pump`]); the window of
//! unacknowledged batches in flight is bounded, everything else waits on disk, so memory does
//! not grow while the collector is away.
//!
//! Every batch is checked against the collector's rules before it is spooled ([`pack`]): OOM
//! events are split into batches that fit, whatever the burst, and nothing the kernel log says
//! can stop the loop (only a spool that cannot be written does).
//!
//! OOM policies ride the same stream: a `PolicySync` from the collector goes to the
//! [`PolicyRunner`] at once; while policies exist, a pass at least every [`POLICY_TICK`] applies
//! them to new processes (collector reachable or not); policy reports and process lists go out
//! as live messages (not spooled: each one replaces the previous), on connect and when they
//! change.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use fleet_proto::v1::{
    agent_message, AgentMessage, ClockStatus, Hello, HostIdentity, OomEvent, PolicySpec, Sample,
};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::alarm::Alarm;
use crate::config::Settings;
use crate::link::{Connection, Connector, LinkEvent, Outbound, TonicConnector, ACK_DELAY};
use crate::policy::{self, PolicyRunner};
use crate::sources::kmsg::KmsgWatcher;
use crate::sources::ntp::NtpProbe;
use crate::sources::procfs::Sampler;
use crate::sources::topoom::budget::memory_tight;
use crate::sources::topoom::TopOomScanner;
use crate::spool::pack::{self, Repairs};
use crate::spool::{Spool, SpoolError};
use crate::{identity, now_ms, sources, AgentError};

/// How often policies are applied to new processes, at most this far apart: a process has its
/// value at the first pass after its exec, or at the one after if that pass caught it between
/// fork and exec (or inside execve, argv not yet readable). The passes ride the sample ticks
/// (one wakeup for both); only between ticks further apart is there a wakeup of their own.
///
/// Why a second and not less: a wakeup is the dearest thing the agent does on a quiet host
/// (measured, see `alarm`), and a pass of its own between two 1 s ticks cost the agent 0.4 ms
/// of CPU a second in the benchmark, half of what the agent costs without policies; at the
/// default 10 s interval, passes every 500 ms were 20 wakeups for each sample's one.
pub const POLICY_TICK: Duration = Duration::from_millis(1000);

/// A policy pass is not scheduled this close before a sample tick, which makes one itself.
const POLICY_SLACK: Duration = Duration::from_millis(100);

/// The pass between sample ticks after one made at `pass`: [`POLICY_TICK`] later, unless the
/// sample tick at `next_sample` comes first or within [`POLICY_SLACK`] after (it makes one).
fn next_policy_pass(pass: Instant, next_sample: Instant) -> Option<Instant> {
    let at = pass + POLICY_TICK;
    (at + POLICY_SLACK < next_sample).then_some(at)
}

/// When the loop's own timed events are next due: the sample tick, and the policy passes
/// between ticks further apart than [`POLICY_TICK`]. Every tick makes a pass (the interval is at
/// least [`POLICY_TICK`]), so the passes between ticks keep the ticks' phase. (The kernel log's
/// quiet window and the spool's sync are their owners' deadlines.)
struct Schedule {
    interval: Duration,
    next_sample: Instant,
    /// The next pass between ticks; the first one at once, so that policies kept from before a
    /// restart are enforced before the first sample.
    policy_at: Option<Instant>,
}

impl Schedule {
    fn new(now: Instant, interval: Duration) -> Schedule {
        Schedule {
            interval,
            next_sample: now + interval,
            policy_at: Some(now),
        }
    }

    /// The earliest deadline (the passes' only while policies exist).
    fn next(&self, policies: bool) -> Instant {
        match self.policy_at.filter(|_| policies) {
            Some(pass) => pass.min(self.next_sample),
            None => self.next_sample,
        }
    }

    /// The tick due was made at `now` (with a pass): the next is an interval after it was
    /// due, or after `now` when it came more than an interval late (none is made up for).
    fn ticked(&mut self, now: Instant) {
        self.next_sample += self.interval;
        if self.next_sample <= now {
            self.next_sample = now + self.interval;
        }
        self.passed(now);
    }

    fn pass_due(&self, now: Instant) -> bool {
        self.policy_at.is_some_and(|at| at <= now)
    }

    /// A pass was made at `now`.
    fn passed(&mut self, now: Instant) {
        self.policy_at = next_policy_pass(now, self.next_sample);
    }
}

/// Spool segments roll at this size.
pub const SPOOL_SEGMENT_BYTES: u64 = 1024 * 1024;

/// What the agent reads each interval and continuously.
pub struct Sources {
    pub sampler: Sampler,
    /// None when top-oom is turned off (`top_oom_limit = 0`).
    pub top_oom: Option<TopOomScanner>,
    /// None when the kernel log is not read (`kmsg_path = ""`) or cannot be opened.
    pub kmsg: Option<KmsgWatcher>,
    /// None when no NTP server is configured or discovered.
    pub ntp: Option<NtpProbe>,
    /// None when the policy state cannot be opened (logged at start).
    pub policies: Option<PolicyRunner>,
}

/// An NTP measurement under way (it waits up to its timeout on UDP replies).
type Measuring = Pin<Box<dyn Future<Output = ClockStatus> + Send>>;

/// The running agent; see the module doc.
pub struct Agent<C> {
    interval: Duration,
    sources: Sources,
    spool: Spool,
    link: Connection<C>,
    measuring: Option<Measuring>,
    /// The last NTP measurement, sent with the next sample.
    clock: Option<ClockStatus>,
    /// The last sampling error, logged once until sampling recovers.
    last_sample_error: Option<String>,
    /// The last problem left out of a sample to make it valid, logged once until it changes.
    last_sample_repair: Option<String>,
    /// The loop's deadlines on tokio's clock instead of a timerfd (tests on paused time).
    tokio_clock: bool,
}

impl Agent<TonicConnector> {
    /// Sets the agent up from validated settings: its identity, the spool (what it recovered
    /// logged), the sources, and the gRPC link to the collector.
    ///
    /// # Errors
    /// [`AgentError`] when the identity, the spool, /proc or the collector URL and TLS files
    /// cannot be set up.
    pub fn open(settings: &Settings) -> Result<Agent<TonicConnector>, AgentError> {
        let identity = identity::identity(settings).map_err(AgentError::Setup)?;
        // `--check-config` (the units' ExecStartPre) refuses this; the daemon says it and goes
        // on spooling, so new certificate files and a SIGHUP fix it without a restart.
        if let Err(e) = identity::check_certificate(settings, &identity.host_id, now_ms() / 1000) {
            error!(error = %e, "the collector will refuse this agent's certificate");
        }
        let (spool, spooled) = open_spool(settings)?;
        let sampler = Sampler::new(&settings.proc_root, &settings.sys_root)?;
        let top_oom = (settings.top_oom_limit > 0)
            .then(|| TopOomScanner::new(&settings.proc_root, settings.top_oom_limit));
        let kmsg = open_kmsg(settings);
        info!(
            host_id = %identity.host_id,
            hostname = %identity.hostname,
            cluster = %identity.cluster,
            interval = %humantime::format_duration(settings.interval),
            spooled,
            "fleet-agent starting"
        );
        let sources = Sources {
            sampler,
            top_oom,
            kmsg,
            ntp: ntp_probe(settings),
            policies: open_policies(settings),
        };
        // Checked now so a wrong URL or certificate file stops the agent at start; later
        // connection attempts read the files again, so rotated certificates are used without
        // a restart.
        let connector = TonicConnector::new(settings).map_err(AgentError::Setup)?;
        Ok(Agent::new(settings, identity, sources, spool, connector))
    }
}

impl<C: Connector> Agent<C> {
    /// An agent over given parts; its link makes its first attempt when [`run`](Self::run)
    /// starts.
    pub fn new(
        settings: &Settings,
        identity: HostIdentity,
        sources: Sources,
        spool: Spool,
        connector: C,
    ) -> Agent<C> {
        let hello = AgentMessage {
            msg: Some(agent_message::Msg::Hello(Hello {
                identity: Some(identity),
                spool_epoch: spool.epoch(),
                ack_delay_ms: ACK_DELAY.as_millis() as u32,
            })),
        };
        Agent {
            interval: settings.interval,
            sources,
            spool,
            link: Connection::new(connector, hello, settings.collector.clone()),
            measuring: None,
            clock: None,
            last_sample_error: None,
            last_sample_repair: None,
            tokio_clock: false,
        }
    }

    /// The loop's deadlines (sample ticks, policy passes, the kernel log's quiet window, spool
    /// syncs) on tokio's clock instead of a timerfd: for tests that run the loop on tokio's
    /// paused clock. The daemon's timerfd makes one wakeup per deadline (see [`Alarm`]).
    #[must_use]
    pub fn on_tokio_clock(mut self) -> Agent<C> {
        self.tokio_clock = true;
        self
    }

    /// Runs until `shutdown` resolves, then flushes what it can.
    ///
    /// # Errors
    /// Only errors that make running impossible (the spool directory cannot be written).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
        let mut hup = signal(SignalKind::hangup()).ok();
        // Every deadline of the loop is one alarm, set to the earliest (see `alarm`).
        let mut alarm = if self.tokio_clock {
            Alarm::on_tokio_clock()
        } else {
            Alarm::new().map_err(AgentError::Timer)?
        };
        let mut schedule = Schedule::new(Instant::now(), self.interval);
        tokio::pin!(shutdown);
        loop {
            let flush_at = self
                .sources
                .kmsg
                .as_ref()
                .and_then(KmsgWatcher::flush_deadline);
            let wake_at = [
                Some(schedule.next(self.has_policies())),
                flush_at,
                self.spool.sync_deadline(),
            ]
            .into_iter()
            .flatten()
            .min();
            alarm.set(wake_at).map_err(AgentError::Timer)?;
            tokio::select! {
                () = &mut shutdown => break,
                () = hangup(&mut hup) => self.on_sighup(),
                () = readable(&mut self.sources.kmsg) => self.on_kmsg_readable()?,
                status = measured(&mut self.measuring) => self.on_ntp_measured(status),
                fired = alarm.fired() => {
                    fired.map_err(AgentError::Timer)?;
                    self.on_alarm(&mut schedule, Instant::now())?;
                }
                event = self.link.next_event(&mut self.spool) => self.on_link_event(event?),
            }
            self.pump()?;
        }
        self.flush().await
    }

    /// The alarm went off: what is due at `now` runs: the kernel log's quiet window, the tick
    /// (with a policy pass) or else a policy pass between ticks, a spool sync.
    ///
    /// # Errors
    /// The spool cannot be written.
    fn on_alarm(&mut self, schedule: &mut Schedule, now: Instant) -> Result<(), AgentError> {
        let kmsg_quiet = self
            .sources
            .kmsg
            .as_ref()
            .and_then(KmsgWatcher::flush_deadline)
            .is_some_and(|at| at <= now);
        if kmsg_quiet {
            self.on_kmsg_flush()?;
        }
        if schedule.next_sample <= now {
            schedule.ticked(now);
            if self.has_policies() {
                self.on_policy_tick();
            }
            self.on_tick()?;
        } else if self.has_policies() && schedule.pass_due(now) {
            schedule.passed(now);
            self.on_policy_tick();
        }
        self.spool.sync_if_due(now)?;
        Ok(())
    }

    /// Rotated certificates: a new connection reads the files again.
    fn on_sighup(&mut self) {
        info!("SIGHUP: reconnecting with the TLS files read again");
        self.link.reconnect();
    }

    /// The kernel log has records: the kills they hold are spooled at once (the rest of a
    /// report, such as its `oom_reaper` line, amends them when the report is over).
    ///
    /// # Errors
    /// The spool cannot be written.
    fn on_kmsg_readable(&mut self) -> Result<(), SpoolError> {
        let Some(kmsg) = self.sources.kmsg.as_mut() else {
            return Ok(());
        };
        let events = kmsg.read_available();
        spool_events(&mut self.spool, events)
    }

    /// The kernel log went quiet: the pending report is complete, what its last lines changed
    /// in its kills is spooled (amendments), then the cursor is saved (only once everything
    /// read so far is in the durable spool).
    ///
    /// # Errors
    /// The spool cannot be written.
    fn on_kmsg_flush(&mut self) -> Result<(), SpoolError> {
        let Some(kmsg) = self.sources.kmsg.as_mut() else {
            return Ok(());
        };
        let events = kmsg.flush_idle();
        spool_events(&mut self.spool, events)?;
        if let Err(e) = kmsg.commit() {
            warn!(error = %e, "cannot save the kernel log cursor");
        }
        Ok(())
    }

    /// An NTP measurement finished: it rides with the next sample.
    fn on_ntp_measured(&mut self, status: ClockStatus) {
        self.measuring = None;
        self.clock = Some(status);
    }

    /// Policies are applied to new processes; their state goes out if it changed.
    fn on_policy_tick(&mut self) {
        let Some(runner) = self.sources.policies.as_mut() else {
            return;
        };
        runner.tick();
        if let Some(tx) = self.link.sender() {
            send_policy_state(tx, runner, false);
        }
    }

    /// The interval: policy state, an NTP measurement when due, the kernel's OOM counter, and
    /// one sample into the spool.
    ///
    /// # Errors
    /// The spool cannot be written.
    fn on_tick(&mut self) -> Result<(), SpoolError> {
        if let (Some(tx), Some(runner)) = (self.link.sender(), self.sources.policies.as_mut()) {
            send_policy_state(tx, runner, false);
        }
        if let Some(probe) = self.sources.ntp.as_mut() {
            if self.measuring.is_none() && probe.due(Instant::now()) {
                self.measuring = Some(Box::pin(probe.start()));
            }
        }
        self.sample()?;
        // The kill counter as the sample just read it: /proc/vmstat is read once per tick.
        if let Some(kmsg) = self.sources.kmsg.as_mut() {
            let events = kmsg.check_counter(self.sources.sampler.oom_kill());
            spool_events(&mut self.spool, events)?;
        }
        Ok(())
    }

    /// What the link reports: on a new stream the policy state goes out in full; a policy set
    /// from the collector is enforced.
    fn on_link_event(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Connected { .. } => {
                if let (Some(tx), Some(runner)) =
                    (self.link.sender(), self.sources.policies.as_mut())
                {
                    send_policy_state(tx, runner, true);
                }
            }
            LinkEvent::PolicySync(specs) => self.on_policy_sync(&specs),
            // The link logged it and reconnects; the spool keeps everything unacknowledged.
            LinkEvent::Lost(_) => {}
        }
    }

    fn on_policy_sync(&mut self, specs: &[PolicySpec]) {
        match self.sources.policies.as_mut() {
            Some(runner) => {
                runner.sync(specs);
                if let Some(tx) = self.link.sender() {
                    send_policy_state(tx, runner, false);
                }
            }
            None => warn!(
                policies = specs.len(),
                "OOM policies received but not enforced (policy state unavailable)"
            ),
        }
    }

    /// Graceful shutdown: send what is spooled, wait a little for the acknowledgements, and
    /// write the spool metadata.
    ///
    /// # Errors
    /// The spool cannot be read or its metadata written.
    async fn flush(mut self) -> Result<(), AgentError> {
        self.link.flush(&mut self.spool).await?;
        let (pending, dropped_samples) =
            (self.spool.pending_frames(), self.spool.dropped_samples());
        self.spool.close()?;
        info!(
            pending,
            dropped_samples, "agent stopped; unacknowledged samples stay in the spool"
        );
        Ok(())
    }

    fn has_policies(&self) -> bool {
        self.sources
            .policies
            .as_ref()
            .is_some_and(PolicyRunner::has_policies)
    }

    /// Sends what the window and the stream have room for.
    fn pump(&mut self) -> Result<(), SpoolError> {
        let status = self.sources.kmsg.as_ref().map(KmsgWatcher::status);
        self.link.pump(&mut self.spool, status)
    }

    /// One sample (with the top-oom ranking when due, and the last clock measurement) into the
    /// spool; a sampling error is logged once until sampling recovers.
    fn sample(&mut self) -> Result<(), SpoolError> {
        // The sample's time is that of its reading, taken before it (as sadc does), so that
        // the top-oom scan or a starved CPU after the reading does not shift it.
        let time_ms = now_ms();
        let out = match self.sources.sampler.sample() {
            Ok(out) => out,
            Err(e) => {
                let msg = e.to_string();
                if self.last_sample_error.as_deref() != Some(msg.as_str()) {
                    error!(error = %msg, "sampling failed");
                    self.last_sample_error = Some(msg);
                }
                return Ok(());
            }
        };
        if self.last_sample_error.take().is_some() {
            info!("sampling recovered");
        }
        let mut ranking = Vec::new();
        if let Some(scanner) = self.sources.top_oom.as_mut() {
            let now = self.sources.sampler.latest();
            let m = &now.meminfo;
            let stalls = now.own.psi_mem.and_then(|p| p.some).map(|l| l.avg10);
            let fallback = m.mem_free + m.buffers + m.cached;
            scanner.set_memory_tight(memory_tight(m.mem_total, m.mem_available, fallback, stalls));
            if scanner.due(Instant::now()) {
                match scanner.scan() {
                    Ok(r) => ranking = r,
                    Err(e) => debug!(error = %e, "top-oom scan failed"),
                }
            }
        }
        let sample = Sample {
            time_ms,
            interval_ms: out.interval_ms,
            records: out.records,
            top_oom: ranking,
            clock: self.clock.take(),
        };
        let dropped_before = self.spool.dropped_samples();
        let repairs = pack::spool_sample(&mut self.spool, sample)?;
        self.log_sample_repairs(&repairs);
        let evicted = self.spool.dropped_samples() - dropped_before - repairs.samples_dropped;
        if evicted > 0 {
            warn!(
                dropped_samples = self.spool.dropped_samples(),
                pending = self.spool.pending_frames(),
                "spool full: oldest samples discarded"
            );
        }
        Ok(())
    }

    /// What had to be left out of a sample for the collector to take it: logged when the
    /// problem is new, not every interval.
    fn log_sample_repairs(&mut self, repairs: &Repairs) {
        if !repairs.any() {
            return;
        }
        if repairs.first != self.last_sample_repair {
            warn!(
                problem = repairs.first.as_deref().unwrap_or_default(),
                records_left_out = repairs.records_dropped,
                samples_dropped = repairs.samples_dropped,
                "part of a sample is not valid for the collector and was left out (logged again only when the problem changes)"
            );
            self.last_sample_repair = repairs.first.clone();
        }
    }
}

/// Opens the kernel log, if the settings ask for it. One that cannot be read is logged and
/// left out: samples still flow.
fn open_kmsg(settings: &Settings) -> Option<KmsgWatcher> {
    let path = settings.kmsg_path.as_ref()?;
    KmsgWatcher::open(path, &settings.proc_root, &settings.state_dir)
        .map_err(|e| {
            // The operator sees why OOM kills are not reported.
            warn!(error = %e, "OOM kills will not be reported (the agent needs CAP_SYSLOG to read the kernel log)");
        })
        .ok()
}

/// The NTP probe of the configured servers, or of those chrony, ntpd or timesyncd use; none
/// (logged) without any.
fn ntp_probe(settings: &Settings) -> Option<NtpProbe> {
    let servers = if settings.ntp_servers.is_empty() {
        sources::ntp::config::discover(&settings.etc_root)
    } else {
        settings.ntp_servers.clone()
    };
    if servers.is_empty() {
        warn!("no NTP server configured or found in chrony/ntpd/timesyncd configuration; clock offsets will not be measured");
        return None;
    }
    info!(servers = ?servers, "measuring NTP offsets");
    Some(
        NtpProbe::new(servers, Duration::from_secs(1), &settings.proc_root)
            .with_period(settings.ntp_period),
    )
}

/// Opens the spool under the state directory and logs what it recovered or lost; with the
/// number of frames it holds.
///
/// # Errors
/// The spool directory cannot be read or written.
pub fn open_spool(settings: &Settings) -> Result<(Spool, u64), SpoolError> {
    // Seqs reserved on this boot are not skipped after a restart (see the spool's doc).
    let boot_id = std::fs::read_to_string(settings.proc_root.join("sys/kernel/random/boot_id"))
        .unwrap_or_default();
    let (spool, report) = Spool::open_on_boot(
        &settings.state_dir.join("spool"),
        settings.spool_max_bytes,
        SPOOL_SEGMENT_BYTES.min(settings.spool_max_bytes),
        boot_id.trim(),
    )?;
    for (path, offset, len) in &report.corrupt {
        warn!(file = %path.display(), offset, bytes = len,
            "corrupt spool data skipped; the frames around it are kept");
    }
    if report.truncated_bytes > 0 {
        warn!(
            bytes = report.truncated_bytes,
            "torn last spool frame truncated (the agent stopped mid-write)"
        );
    }
    if let Some(problem) = &report.meta_problem {
        warn!(problem = %problem, "spool metadata rebuilt from the segments");
    }
    Ok((spool, report.frames))
}

/// Opens the OOM policy enforcer. A state file that cannot be understood is moved aside (named
/// in the log) rather than stopping the agent: the collector sends the policies again, and the
/// values the processes hold now become their originals.
fn open_policies(settings: &Settings) -> Option<PolicyRunner> {
    let open = || PolicyRunner::open(&settings.proc_root, &settings.etc_root, &settings.state_dir);
    match open() {
        Ok(r) => Some(r),
        Err(policy::EnforceError::State { dir, source }) => {
            let path = dir.join(policy::state::STATE_FILE);
            let aside = dir.join(format!(
                "{}.unreadable-{}",
                policy::state::STATE_FILE,
                now_ms()
            ));
            error!(error = %source, moved_to = %aside.display(),
                "OOM policy state unreadable; moved aside, policies come again from the collector");
            if let Err(e) = std::fs::rename(&path, &aside) {
                error!(error = %e, "cannot move the policy state aside; OOM policies are not enforced");
                return None;
            }
            open()
                .map_err(|e| error!(error = %e, "OOM policies are not enforced"))
                .ok()
        }
        Err(e) => {
            error!(error = %e, "OOM policies are not enforced");
            None
        }
    }
}

/// Sends the policy report and the process list when due. Live messages: when the stream is
/// full they are tried again at the next tick.
fn send_policy_state(tx: &mpsc::Sender<Outbound>, runner: &mut PolicyRunner, new_session: bool) {
    if new_session {
        runner.report_due();
    }
    if let Some(report) = runner.take_report() {
        let msg = AgentMessage {
            msg: Some(agent_message::Msg::PolicyReport(report)),
        };
        if tx.try_send(msg.into()).is_err() {
            runner.report_due();
        }
    }
    if let Some(list) = runner.process_list(new_session) {
        let msg = AgentMessage {
            msg: Some(agent_message::Msg::ProcessList(list)),
        };
        if tx.try_send(msg.into()).is_err() {
            runner.list_unsent();
        }
    }
}

/// Kills logged one line each per call, at most; a burst gets one more line with the rest.
const KILLS_LOGGED: usize = 16;

/// Spools OOM events at once, in batches of their own that the spool never drops, split to fit
/// the collector's limits whatever their number and size.
fn spool_events(spool: &mut Spool, events: Vec<OomEvent>) -> Result<(), SpoolError> {
    if events.is_empty() {
        return Ok(());
    }
    for e in events.iter().take(KILLS_LOGGED) {
        if e.amends {
            debug!(victim_pid = ?e.victim_pid, kmsg_seq = ?e.kmsg_seq, reaped = e.reaped,
                "OOM kill amended by the rest of its report");
        } else {
            info!(victim_pid = ?e.victim_pid, victim_comm = ?e.victim_comm, memcg = ?e.task_memcg,
                source = %e.source, "OOM kill");
        }
    }
    let count = events.len();
    let repairs = pack::spool_events(spool, events)?;
    if count > KILLS_LOGGED {
        info!(
            more = count - KILLS_LOGGED,
            batches = repairs.frames,
            "OOM kills: a burst (the first ones above)"
        );
    }
    if repairs.any() {
        warn!(
            events = repairs.events_repaired,
            problem = repairs.first.as_deref().unwrap_or_default(),
            "OOM events changed to be valid for the collector (time, seq or an oversized detail)"
        );
    }
    Ok(())
}

/// SIGHUP, when its handler could be installed.
async fn hangup(hup: &mut Option<Signal>) {
    if let Some(h) = hup {
        if h.recv().await.is_some() {
            return;
        }
    }
    std::future::pending().await
}

/// The kernel log may have records (never, when it is not read).
async fn readable(kmsg: &mut Option<KmsgWatcher>) {
    match kmsg {
        Some(k) => k.readable().await,
        None => std::future::pending().await,
    }
}

/// The NTP measurement under way finishes (never, without one).
async fn measured(measuring: &mut Option<Measuring>) -> ClockStatus {
    match measuring {
        Some(m) => m.await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At a 1 s interval: a pass with each tick only; at 10 s, one every second between ticks;
    /// at 1.5 s, one between ticks.
    #[test]
    fn policy_passes_ride_the_sample_ticks() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(next_policy_pass(t, t + ms(1000)), None);
        assert_eq!(
            next_policy_pass(t + ms(8000), t + ms(10_000)),
            Some(t + ms(9000))
        );
        assert_eq!(next_policy_pass(t + ms(9000), t + ms(10_000)), None);
        assert_eq!(next_policy_pass(t, t + ms(1500)), Some(t + ms(1000)));
        // Not within POLICY_SLACK of the tick, which makes one itself.
        assert_eq!(next_policy_pass(t, t + ms(1050)), None);
    }

    /// Ticks keep their phase; a late one is not made up for; passes between ticks start from
    /// the tick; the first pass is at once, and only while policies exist.
    #[test]
    fn the_schedule_keeps_the_ticks_phase() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Schedule::new(t, ms(10_000));
        assert_eq!(s.next(true), t, "the first pass at once");
        assert_eq!(s.next(false), t + ms(10_000));
        s.passed(t);
        assert_eq!(s.next(true), t + ms(1000));
        // The tick came 3 ms late: the next is still on the 10 s grid, its passes from now.
        s.ticked(t + ms(10_003));
        assert_eq!(s.next_sample, t + ms(20_000));
        assert_eq!(s.next(true), t + ms(11_003));
        assert!(!s.pass_due(t + ms(11_000)) && s.pass_due(t + ms(11_003)));
        // More than an interval late: the next one an interval after it.
        s.ticked(t + ms(35_000));
        assert_eq!(s.next_sample, t + ms(45_000));
    }
}
