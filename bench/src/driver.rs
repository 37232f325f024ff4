//! The load generator: keep-alive HTTP/1.1 connections, each sending its next request as soon as the last
//! answer arrived (closed loop), with latencies in an HDR histogram.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, client::conn::http1::SendRequest, header};
use hyper_util::rt::TokioIo;

/// One keep-alive connection to the server.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { sender })
    }

    /// POSTs a GraphQL request body; returns the status and the whole response body. `computed`
    /// asks for an answer computed afresh (`Cache-Control: no-cache`).
    pub async fn post(
        &mut self,
        body: Bytes,
        token: Option<&str>,
        computed: bool,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.sender.ready().await?;
        let mut request = Request::post("/graphql")
            .header(header::HOST, "127.0.0.1")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if computed {
            request = request.header(header::CACHE_CONTROL, "no-cache");
        }
        let response = self
            .sender
            .send_request(request.body(Full::new(body))?)
            .await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// What one answer counted as: a success, or a failure with a label (`HTTP 503`, an error code, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed(String),
}

/// One connection's script: which request comes next, and whether an answer is a success.
pub trait Session: Send {
    /// The next request body and bearer token.
    fn next_request(&mut self) -> (Bytes, Option<Arc<str>>);
    /// Whether its requests ask for answers computed afresh, past the server's response cache.
    fn computed(&self) -> bool {
        false
    }
    /// Judges the answer to the request `next_request` returned last.
    fn check(&mut self, status: StatusCode, body: &[u8]) -> Outcome;
    /// A request that leaves the data as it was before the run (e.g. removes a pending assignment).
    fn cleanup(&mut self) -> Option<(Bytes, Option<Arc<str>>)> {
        None
    }
}

pub type SessionFactory = Arc<dyn Fn(usize) -> Box<dyn Session> + Send + Sync>;

/// Connections running one kind of session.
pub struct Group {
    pub connections: usize,
    pub sessions: SessionFactory,
}

/// Counts and latencies of the answers that arrived inside the measured window.
#[derive(Clone)]
pub struct Stats {
    pub latency_us: Histogram<u64>,
    pub ok: u64,
    pub failures: BTreeMap<String, u64>,
}

impl Stats {
    pub fn new() -> Self {
        Self {
            // 1 µs to 100 s at 3 significant digits.
            latency_us: Histogram::new_with_bounds(1, 100_000_000, 3).expect("histogram bounds"),
            ok: 0,
            failures: BTreeMap::new(),
        }
    }

    fn record(&mut self, elapsed: Duration, outcome: Outcome) {
        let micros = (elapsed.as_micros() as u64).clamp(1, 100_000_000);
        self.latency_us.saturating_record(micros);
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Failed(label) => *self.failures.entry(label).or_default() += 1,
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        let _ = self.latency_us.add(&other.latency_us);
        self.ok += other.ok;
        for (label, count) in &other.failures {
            *self.failures.entry(label.clone()).or_default() += count;
        }
    }

    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    pub fn percentile_ms(&self, quantile: f64) -> f64 {
        if self.latency_us.is_empty() {
            return 0.0;
        }
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latency_us.max() as f64 / 1000.0
    }
}

/// The phases of a run: requests before `measure_from` warm up and are not counted. With `requests`, the
/// run also stops once that many requests were sent (the soak).
#[derive(Clone)]
pub struct Window {
    pub measure_from: Instant,
    pub end: Instant,
    pub requests: Option<Arc<AtomicI64>>,
}

impl Window {
    pub fn starting_now(warmup: Duration, measure: Duration) -> Self {
        let measure_from = Instant::now() + warmup;
        Self {
            measure_from,
            end: measure_from + measure,
            requests: None,
        }
    }

    /// Exactly `requests` requests, all measured, however long they take (at most a day).
    pub fn counted(requests: u64) -> Self {
        let now = Instant::now();
        Self {
            measure_from: now,
            end: now + Duration::from_secs(86_400),
            requests: Some(Arc::new(AtomicI64::new(
                i64::try_from(requests).unwrap_or(i64::MAX),
            ))),
        }
    }

    fn take_one(&self) -> bool {
        self.requests
            .as_ref()
            .is_none_or(|left| left.fetch_sub(1, Ordering::Relaxed) > 0)
    }
}

/// Runs every group's connections until the window ends; returns each group's merged stats.
pub async fn run(addr: SocketAddr, groups: &[Group], window: &Window) -> Vec<Stats> {
    let mut handles = Vec::new();
    for (group_index, group) in groups.iter().enumerate() {
        for connection in 0..group.connections {
            let session = (group.sessions)(connection);
            handles.push((
                group_index,
                tokio::spawn(drive(addr, session, window.clone())),
            ));
        }
    }
    let mut merged: Vec<Stats> = groups.iter().map(|_| Stats::new()).collect();
    for (group_index, handle) in handles {
        match handle.await {
            Ok(stats) => merged[group_index].merge(&stats),
            Err(e) => {
                *merged[group_index]
                    .failures
                    .entry(format!("driver task: {e}"))
                    .or_default() += 1;
            }
        }
    }
    merged
}

async fn drive(addr: SocketAddr, mut session: Box<dyn Session>, window: Window) -> Stats {
    let mut stats = Stats::new();
    let mut connection = None;
    while Instant::now() < window.end && window.take_one() {
        let conn = match &mut connection {
            Some(conn) => conn,
            None => match Connection::open(addr).await {
                Ok(conn) => connection.insert(conn),
                Err(_) => {
                    stats.record(Duration::ZERO, Outcome::Failed("connect".into()));
                    if let Some(left) = &window.requests {
                        left.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let (body, token) = session.next_request();
        let started = Instant::now();
        let result = conn.post(body, token.as_deref(), session.computed()).await;
        let done = Instant::now();
        let outcome = match result {
            Ok((status, body)) => session.check(status, &body),
            Err(_) => {
                connection = None;
                Outcome::Failed("connection lost".into())
            }
        };
        if done >= window.measure_from && done < window.end {
            stats.record(done - started, outcome);
        }
    }
    if let (Some(conn), Some((body, token))) = (&mut connection, session.cleanup())
        && let Ok((status, answer)) = conn.post(body, token.as_deref(), true).await
    {
        let _ = session.check(status, &answer);
    }
    stats
}
