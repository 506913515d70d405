//! `fleetctl ui [--listen 127.0.0.1:8080]`: a local web console, like `kubectl proxy`. It talks
//! to the collector with the operator's own settings and certificate ([`Context::connect`]), so
//! it adds no new way into the collector and shows exactly what that certificate may see, and
//! may do: only `/policies` changes anything, after a dry run or a confirmation page the operator
//! confirms (`policies`).
//!
//! The first line on stdout is `serving on http://ADDR` (`--listen 127.0.0.1:0` picks a free
//! port); SIGINT or SIGTERM stop it, after the requests under way are answered.
//!
//! Pages (their paths are a contract), server-rendered HTML with the SVG graphs of
//! [`crate::plot`] inline and one small hand-written script (`assets/ui.js`: dragging across a
//! graph zooms to that range, clicking a column header sorts a table); everything is compiled
//! into the binary, nothing is fetched from elsewhere:
//!
//! - `/`: the fleet (`fleet`): firing alerts on top, then each cluster's hosts with CPU,
//!   memory and load sparklines of the last hour, OOM kills in 24 h and clock offset.
//!   `?cluster=C`, `?label=K=V` filter; it reloads itself every 30 s.
//! - `/hosts/HOST_ID` (`host`): a graph per sar activity the host reports, `?since=&until=`
//!   (default the last hour; Unix ms, `6h` or RFC 3339), OOM kills marked and linked.
//! - `/oom/ID` (`oom`): one kill's report, its task table, the memory, swap and paging graphs of
//!   the 30 minutes before it and the top-oom ranking before it.
//! - `/ntp` (`ntp`): per cluster, each host's NTP offset over a range on one graph, the
//!   cluster's spread, and each host's time sources now.
//! - `/alerts` (`alerts`): firing, pending and resolved alerts.
//! - `/policies` (`policies`): each policy's versions and per-host status, a dry-run form;
//!   `POST /policies/dry-run`, then `POST /policies/apply` with the dry run's token; a rollback
//!   or delete by `POST /policies/confirm`, then `POST /policies/change` with its token.
//!
//! Every answer goes out gzipped to a browser that accepts it (`gzip`).
//!
//! An unknown host or kill is a 404 page; a bad range or policy document a 400; a call the
//! collector refuses to this certificate, or an apply without its token, a 403; a collector
//! that fails a 502 with its message. An older collector without a newer call: the graphs fall
//! back to the older query (raw rows, bucketed here), and a page that has none to fall back to
//! is a 501 that says so. Every value put in a page is escaped (`html::e`).

mod alerts;
mod fleet;
mod gzip;
mod host;
mod html;
mod ntp;
mod oom;
mod policies;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use clap::Args;
use tonic::Code;

use super::{Context, Run};
use crate::client::{CallError, Collector};
use crate::Output;

/// `fleetctl ui`.
#[derive(Debug, Clone, Args)]
pub struct UiArgs {
    /// Address to serve on (port 0: any free port); keep it on loopback: the pages show what
    /// your certificate may see
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

impl Run for UiArgs {
    async fn run(self, ctx: &Context) -> Result<Output> {
        let collector = ctx.connect().await?;
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .with_context(|| format!("cannot listen on {}", self.listen))?;
        let addr = listener.local_addr().context("the listening address")?;
        {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "serving on http://{addr}").context("writing to stdout")?;
            stdout.flush().context("writing to stdout")?;
        }
        serve(listener, collector, shutdown()).await?;
        Ok(Output::default())
    }
}

/// Serves the pages on `listener` until `shutdown` completes.
///
/// # Errors
///
/// The listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    collector: Collector,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router(collector))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving the console")
}

/// What every page handler gets.
type Ui = Arc<Console>;

/// The console's state: the collector connection, and the dry runs awaiting confirmation.
struct Console {
    collector: Collector,
    confirmations: policies::Confirmations,
}

fn router(collector: Collector) -> Router {
    Router::new()
        .route("/", get(fleet_page))
        .route("/hosts/{id}", get(host_page))
        .route("/oom/{id}", get(oom_page))
        .route("/alerts", get(alerts_page))
        .route("/ntp", get(ntp_page))
        .route("/policies", get(policies_page))
        .route("/policies/dry-run", post(policy_dry_run))
        .route("/policies/apply", post(policy_apply))
        .route("/policies/confirm", post(policy_confirm))
        .route("/policies/change", post(policy_change))
        .route("/assets/ui.js", get(script))
        .route("/assets/ui.css", get(style))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(gzip::compress))
        .with_state(Arc::new(Console {
            collector,
            confirmations: policies::Confirmations::default(),
        }))
}

async fn fleet_page(State(ui): State<Ui>, RawQuery(q): RawQuery) -> Response {
    answer(fleet::page(&ui.collector, q.as_deref()).await)
}

async fn host_page(
    State(ui): State<Ui>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    answer(host::page(&ui.collector, &id, q.as_deref()).await)
}

async fn oom_page(State(ui): State<Ui>, Path(id): Path<String>) -> Response {
    answer(oom::page(&ui.collector, &id).await)
}

async fn ntp_page(State(ui): State<Ui>, RawQuery(q): RawQuery) -> Response {
    answer(ntp::page(&ui.collector, q.as_deref()).await)
}

async fn alerts_page(State(ui): State<Ui>) -> Response {
    answer(alerts::page(&ui.collector).await)
}

async fn policies_page(State(ui): State<Ui>) -> Response {
    answer(policies::page(&ui.collector).await)
}

async fn policy_dry_run(State(ui): State<Ui>, form: String) -> Response {
    answer(policies::dry_run(&ui.collector, &ui.confirmations, &form).await)
}

async fn policy_apply(State(ui): State<Ui>, form: String) -> Response {
    answer(policies::apply(&ui.collector, &ui.confirmations, &form).await)
}

async fn policy_confirm(State(ui): State<Ui>, form: String) -> Response {
    answer(policies::confirm(&ui.collector, &ui.confirmations, &form).await)
}

async fn policy_change(State(ui): State<Ui>, form: String) -> Response {
    answer(policies::change(&ui.collector, &ui.confirmations, &form).await)
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/ui.js"),
    )
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/ui.css"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn not_found() -> Response {
    PageError::NotFound("no such page".to_owned()).into_response()
}

/// Why a page is not shown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    /// 404: an unknown host or kill, or path.
    #[error("{0}")]
    NotFound(String),
    /// 400: a bad query string or form.
    #[error("{0}")]
    BadRequest(String),
    /// 403: the collector refused this certificate the call, or an action came without its
    /// confirmation.
    #[error("{0}")]
    Forbidden(String),
    /// 501: the collector has no such call (`Unimplemented`: a collector older than this
    /// fleetctl), for a page that has no older call to fall back to.
    #[error("{0}")]
    Unsupported(String),
    /// 502: the collector refused or failed.
    #[error("{0}")]
    Collector(String),
}

impl From<CallError> for PageError {
    fn from(err: CallError) -> Self {
        let text = err.to_string();
        match err.code() {
            Code::NotFound => PageError::NotFound(text),
            Code::InvalidArgument => PageError::BadRequest(text),
            Code::PermissionDenied => PageError::Forbidden(format!(
                "The collector refused this with the certificate fleetctl ui uses: {text}"
            )),
            Code::Unimplemented => PageError::Unsupported(format!(
                "The collector does not offer this page's data (a collector older than this \
                 fleetctl: upgrade it to see this page): {text}"
            )),
            _ => PageError::Collector(text),
        }
    }
}

impl From<anyhow::Error> for PageError {
    fn from(err: anyhow::Error) -> Self {
        match err.downcast::<CallError>() {
            Ok(call) => call.into(),
            Err(err) => PageError::Collector(fleet_proto::errors::chain(err.as_ref())),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            PageError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            PageError::BadRequest(_) => (StatusCode::BAD_REQUEST, "Bad request"),
            PageError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
            PageError::Unsupported(_) => {
                (StatusCode::NOT_IMPLEMENTED, "Not offered by this collector")
            }
            PageError::Collector(_) => (StatusCode::BAD_GATEWAY, "The collector did not answer"),
        };
        let body = format!("<p class=\"error\">{}</p>", html::e(&self.to_string()));
        (status, Html(html::page(title, &body, None))).into_response()
    }
}

fn answer(page: Result<String, PageError>) -> Response {
    match page {
        Ok(body) => Html(body).into_response(),
        Err(err) => err.into_response(),
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            // Without a SIGTERM handler, SIGINT alone stops it.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
