//! What `/metrics` reports ([`Gauges::gather`]), read from the counters the collector already
//! keeps (the same that `GetCollectorStatus` shows: sessions, auth refusals, the TLS acceptor,
//! the future screen, the policy book, the store's state) and from the writer's and the rules
//! loop's [`Histogram`]s; the names are a contract, listed in README's "Metrics" table. Served by
//! [`crate::metrics::http`].

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use hyper::StatusCode;
use tonic::Code;

use super::Shared;
use crate::auth::Need;
use crate::metrics::http::{Refusal, Scrape};
use crate::metrics::{render, Family, Format, Histogram, Kind};
use crate::storage::StoreState;

/// The metrics endpoint's view of the collector.
pub(super) struct Gauges {
    pub(super) shared: Shared,
    /// How long each rules evaluation took (empty without rules).
    pub(super) rules_eval: Arc<Histogram>,
    /// Each remote-write receiver's counters (none when off).
    pub(super) remote_write: Vec<Arc<crate::remote_write::SenderStats>>,
}

fn no_labels() -> Vec<(&'static str, String)> {
    Vec::new()
}

impl Gauges {
    /// Every family, as of now.
    pub(super) async fn gather(&self) -> Vec<Family> {
        use Kind::{Counter, Gauge};
        let sh = &self.shared;
        let mut out = vec![
            Family::new(
                Gauge,
                "fleet_collector_build_info",
                "The collector's version.",
            )
            .with(vec![("version", env!("CARGO_PKG_VERSION").into())], 1.0),
            Family::new(
                Gauge,
                "fleet_collector_start_time_seconds",
                "When the collector started (Unix seconds).",
            )
            .with(no_labels(), sh.started_ms as f64 / 1000.0),
            Family::new(
                Gauge,
                "fleet_collector_connected_agents",
                "Hosts with an agent stream open now.",
            )
            .with(no_labels(), sh.sessions.connected() as f64),
            Family::new(
                Gauge,
                "fleet_collector_max_agents",
                "Most agents connected at once (max_agents).",
            )
            .with(no_labels(), sh.max_agents as f64),
        ];
        let ws = &sh.writer.stats;
        out.extend([
            Family::new(
                Counter,
                "fleet_collector_batches_ingested",
                "Agent batches stored for the first time.",
            )
            .with(no_labels(), ws.batches.load(Relaxed) as f64),
            Family::new(
                Counter,
                "fleet_collector_values_ingested",
                "Sar values (one per column of each record) of the batches stored.",
            )
            .with(no_labels(), ws.values.load(Relaxed) as f64),
            Family::new(
                Kind::Histogram,
                "fleet_collector_write_duration_seconds",
                "How long each group commit of the writer (one synced RocksDB write) took.",
            )
            .with_histogram(no_labels(), ws.commits.snapshot()),
            Family::new(
                Gauge,
                "fleet_collector_writer_queue_depth",
                "Batches waiting for the writer.",
            )
            .with(no_labels(), sh.writer.queued() as f64),
            Family::new(
                Gauge,
                "fleet_collector_writer_queue_capacity",
                "Batches the writer queue holds at most; when full, agents wait.",
            )
            .with(no_labels(), super::WRITE_QUEUE as f64),
        ]);
        out.extend(self.refusals());
        out.extend(self.storage().await);
        out.push(
            Family::new(
                Kind::Histogram,
                "fleet_collector_rules_evaluation_duration_seconds",
                "How long each evaluation of the alert rules took.",
            )
            .with_histogram(no_labels(), self.rules_eval.snapshot()),
        );
        out.extend(self.notifiers().await);
        out.extend(self.remote_write());
        let mut up = Family::new(
            Gauge,
            "fleet_host_up",
            "1 when the host's agent is connected, 0 when the host is known but not connected.",
        );
        let mut hosts = sh.store.hosts();
        hosts.sort_by(|a, b| a.identity.host_id.cmp(&b.identity.host_id));
        for h in hosts {
            let i = h.identity;
            up.push(
                vec![
                    ("host_id", i.host_id),
                    ("hostname", i.hostname),
                    ("cluster", i.cluster),
                ],
                if h.connected { 1.0 } else { 0.0 },
            );
        }
        out.push(up);
        out
    }

    /// The refusals and drops `GetCollectorStatus` counts.
    fn refusals(&self) -> Vec<Family> {
        let sh = &self.shared;
        let auth = sh.auth.counts();
        let tls = |f: fn(&crate::tls::Acceptor) -> u64| sh.tls.as_deref().map_or(0, f);
        let mut refusals = Family::new(
            Kind::Counter,
            "fleet_collector_refusals",
            "Connections, calls and agent streams refused, by reason.",
        );
        for (reason, n) in [
            ("tls_handshake", tls(|t| t.refused.load(Relaxed))),
            ("unauthenticated", auth.unauthenticated),
            ("permission_denied", auth.permission_denied),
            ("cluster", auth.cluster),
            ("stream_limit", sh.sessions.refused.load(Relaxed)),
            (
                "certificate_no_longer_accepted",
                tls(|t| t.closed.load(Relaxed)),
            ),
        ] {
            refusals.push(vec![("reason", reason.into())], n as f64);
        }
        let mut future = Family::new(
            Kind::Counter,
            "fleet_collector_future_timestamps",
            "Agent timestamps beyond max_future_skew: samples dropped, kills and clock \
             readings stamped with the collector's time.",
        );
        for (what, n) in [
            ("samples_dropped", &sh.future.samples_dropped),
            ("kills_clamped", &sh.future.kills_clamped),
            ("clock_readings_clamped", &sh.future.clocks_clamped),
        ] {
            future.push(vec![("what", what.into())], n.load(Relaxed) as f64);
        }
        vec![
            refusals,
            future,
            Family::new(
                Kind::Counter,
                "fleet_collector_policy_reports_dropped",
                "Policy status reports from agents dropped (their queue was full).",
            )
            .with(no_labels(), sh.policies.reports_dropped() as f64),
        ]
    }

    /// The store's state and its live SST bytes per column family.
    async fn storage(&self) -> Vec<Family> {
        let state = self.shared.store.state();
        let mut states = Family::new(
            Kind::Gauge,
            "fleet_collector_storage_state",
            "1 for the store's current state: ok (writable), failing (a write failed), \
             read_only (reopened for reading only).",
        );
        for (name, current) in [
            ("ok", matches!(state, StoreState::Writable)),
            ("failing", matches!(state, StoreState::Failing { .. })),
            ("read_only", matches!(state, StoreState::ReadOnly { .. })),
        ] {
            states.push(vec![("state", name.into())], f64::from(u8::from(current)));
        }
        let mut size = Family::new(
            Kind::Gauge,
            "fleet_collector_storage_sst_bytes",
            "Bytes of RocksDB's live SST files per column family (WAL and memtables excluded).",
        );
        let store = self.shared.store.clone();
        if let Ok(Ok(per_cf)) = tokio::task::spawn_blocking(move || store.sst_bytes()).await {
            for (cf, bytes) in per_cf {
                size.push(vec![("column_family", cf)], bytes as f64);
            }
        }
        vec![states, size]
    }

    /// Each alert notifier's queue and failures (none without rules or notifiers).
    async fn notifiers(&self) -> Vec<Family> {
        let stats = match &self.shared.rules {
            Some(engine) => engine.lock().await.notifier_stats(),
            None => Vec::new(),
        };
        let mut queue = Family::new(
            Kind::Gauge,
            "fleet_collector_notifier_queue_depth",
            "Alert changes waiting for the notifier.",
        );
        let mut failures = Family::new(
            Kind::Counter,
            "fleet_collector_notifier_failures",
            "Posts to the notifier that failed and were retried (connection, timeout, 5xx).",
        );
        let mut rejected = Family::new(
            Kind::Counter,
            "fleet_collector_notifier_rejected",
            "Alerts the notifier refused (a 4xx): dropped, not retried.",
        );
        let mut dropped = Family::new(
            Kind::Counter,
            "fleet_collector_notifier_dropped",
            "Alert changes dropped: the queue was full, or undelivered at shutdown.",
        );
        let mut sent = Family::new(
            Kind::Counter,
            "fleet_collector_notifier_alerts_sent",
            "Alerts delivered by the notifier.",
        );
        for s in stats {
            let l = || vec![("notifier", s.target.clone())];
            queue.push(l(), s.queued as f64);
            failures.push(l(), s.failed_attempts as f64);
            rejected.push(l(), s.rejected as f64);
            dropped.push(l(), s.dropped as f64);
            sent.push(l(), s.alerts_sent as f64);
        }
        vec![queue, failures, rejected, dropped, sent]
    }
}

impl Gauges {
    /// Each remote-write receiver's progress and failures, and the outbox's size.
    fn remote_write(&self) -> Vec<Family> {
        use Kind::{Counter, Gauge};
        let store = &self.shared.store;
        let (first, next) = store.outbox_span();
        let now = fleet_proto::clock::now_ms();
        let mut fams = vec![
            Family::new(
                Gauge,
                "fleet_collector_remote_write_lag_entries",
                "Stored batches the receiver has not accepted yet.",
            ),
            Family::new(
                Gauge,
                "fleet_collector_remote_write_lag_seconds",
                "Age of the oldest stored batch the receiver has not accepted (0 when caught up).",
            ),
            Family::new(
                Counter,
                "fleet_collector_remote_write_samples_sent",
                "Samples the receiver accepted.",
            ),
            Family::new(
                Counter,
                "fleet_collector_remote_write_requests_sent",
                "Requests the receiver accepted.",
            ),
            Family::new(
                Counter,
                "fleet_collector_remote_write_failures",
                "Requests that failed and were retried (connection, timeout, 5xx, 429).",
            ),
            Family::new(
                Counter,
                "fleet_collector_remote_write_rejected",
                "Requests the receiver refused for good (4xx): their batches skipped.",
            ),
            Family::new(
                Counter,
                "fleet_collector_remote_write_dropped",
                "Stored batches dropped by the outbox's bound before the receiver accepted them.",
            ),
            Family::new(
                Counter,
                "fleet_collector_remote_write_out_of_order_samples",
                "Samples not sent: not after the newest their series had sent.",
            ),
            Family::new(
                Gauge,
                "fleet_collector_remote_write_shards",
                "Shards of the receiver's send queue (requests in flight at most).",
            ),
            Family::new(
                Gauge,
                "fleet_collector_remote_write_requests_in_flight",
                "Requests being sent or retried now.",
            ),
        ];
        for s in &self.remote_write {
            let l = || vec![("receiver", s.receiver.clone())];
            let oldest = s.oldest_unsent_ms.load(Relaxed);
            let values = [
                next.saturating_sub(s.cursor.load(Relaxed).max(first)) as f64,
                if oldest > 0 {
                    (now - oldest).max(0) as f64 / 1000.0
                } else {
                    0.0
                },
                s.samples.load(Relaxed) as f64,
                s.requests.load(Relaxed) as f64,
                s.failures.load(Relaxed) as f64,
                s.rejected.load(Relaxed) as f64,
                s.dropped.load(Relaxed) as f64,
                s.out_of_order.load(Relaxed) as f64,
                s.shards as f64,
                s.in_flight.load(Relaxed) as f64,
            ];
            for (f, v) in fams.iter_mut().zip(values) {
                f.push(l(), v);
            }
        }
        if store.outbox_limit().is_some() {
            fams.push(
                Family::new(
                    Gauge,
                    "fleet_collector_remote_write_outbox_entries",
                    "Stored batches kept for receivers that have not accepted them.",
                )
                .with(no_labels(), next.saturating_sub(first) as f64),
            );
            fams.push(
                Family::new(
                    Counter,
                    "fleet_collector_remote_write_outbox_dropped",
                    "Stored batches the outbox's bound dropped.",
                )
                .with(
                    no_labels(),
                    store.outbox_stats().dropped.load(Relaxed) as f64,
                ),
            );
        }
        fams
    }
}

impl Scrape for Gauges {
    fn allow(&self, cert: Option<&[u8]>, peer: SocketAddr) -> Result<(), Refusal> {
        let auth = &self.shared.auth;
        match auth.check_cert(cert, Some(peer), Need::View, "GET /metrics") {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::Unauthenticated => {
                Err((StatusCode::UNAUTHORIZED, s.message().to_string()))
            }
            Err(s) => Err((StatusCode::FORBIDDEN, s.message().to_string())),
        }
    }

    async fn render(&self, format: Format) -> String {
        render(&self.gather().await, format)
    }
}
