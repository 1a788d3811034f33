//! A fake of the parts of the Northflank API nfcron uses, speaking the real
//! shapes: the PUT shape in and the GET shape out (they differ), error
//! bodies, cursor pagination, rate-limit headers and 429s, Bearer checks.
//! It counts every request and can inject 429s, 5xx, latency, dropped
//! connections and a revoked token.
//!
//! Used in-process by the tests (`#[path]`-included) and on its own by
//! `cargo run --example fake-northflank`. Built from the reference page and
//! API_NOTES.md, not from nfcron's own code: it shares no module with the
//! client it tests. Its answers are held to the official client's read
//! types (`GetJob*Result`, `ListJobsResult`, pinned in
//! tests/data/northflank-js-client/) by tests/it/official_types.rs: an
//! external image's path without its registry host beside its
//! `registryProvider`, values inherited from linked secret groups unless
//! `show=this`, both health-check ports (the unused one `null`),
//! capitalised enums and server defaults.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub method: String,
    pub path: String,
    /// The query string (without `?`), empty when there is none.
    pub query: String,
    /// 0 when the connection was dropped without a response.
    pub status: u16,
    /// When the fake answered (or dropped) it.
    pub at: Instant,
    /// The job the request was for: from the path, or a PUT body's name.
    pub job: Option<String>,
}

/// A failure to inject.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and a `Retry-After` header when given).
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Close the connection without answering.
    Drop,
    /// Answer normally, but only after this long.
    Delay(Duration),
    /// Answer with this status and an error whose message quotes the
    /// request body, as validators that name the value they refused do.
    Echo { status: u16 },
    /// Answer with this status and an error whose message quotes the
    /// request's bearer token, as servers that name the refused token do
    /// (plain in `message`, JSON-escaped inside `details`).
    EchoToken { status: u16 },
}

/// Applies `fault` to the next `times` requests with `method` (any when
/// `None`).
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub method: Option<Method>,
    pub fault: Fault,
    pub times: usize,
    /// Matching requests to let through before the fault starts.
    pub after: usize,
}

#[derive(Debug, Clone)]
struct Stored {
    project: String,
    /// Values from linked secret groups: `runtimeEnvironment`,
    /// `runtimeFiles`, `buildArguments`, `buildFiles`. Read back merged
    /// with the job's own unless `show=this` (or alone, `show=inherited`).
    inherited: Map<String, Value>,
    /// `cron`, or `manual` for jobs made with [`Fake::add_manual_job`].
    job_type: &'static str,
    /// The PUT body as received, with `id` added.
    body: Map<String, Value>,
    created_at: String,
    updated_at: String,
}

#[derive(Debug)]
struct World {
    token: String,
    jobs: BTreeMap<(Option<String>, String, String), Stored>,
    log: Vec<Logged>,
    /// The method of every request received, before it is answered (a
    /// delayed one is here while in flight).
    arrived: Vec<String>,
    faults: VecDeque<FaultRule>,
    limit: u64,
    remaining: u64,
    window: Duration,
    window_start: Option<Instant>,
    latency: Duration,
    clock: u64,
    /// Body fields accepted beyond `PUT_FIELDS`: an API newer than the
    /// request type the fake follows.
    newer_fields: Vec<String>,
}

/// A running fake. Stops when dropped.
pub struct Fake {
    pub addr: SocketAddr,
    pub url: String,
    world: Arc<Mutex<World>>,
    /// Notified after every logged request.
    logged: Arc<Condvar>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub const TOKEN: &str = "nf-test-token-5ecr3t";

impl Fake {
    /// Starts on `127.0.0.1:port` (0: any free port) on a thread of its own.
    pub fn spawn(port: u16) -> Fake {
        let world = Arc::new(Mutex::new(World {
            token: TOKEN.to_string(),
            jobs: BTreeMap::new(),
            log: Vec::new(),
            arrived: Vec::new(),
            faults: VecDeque::new(),
            limit: 1000,
            remaining: 1000,
            window: Duration::from_secs(3600),
            window_start: None,
            latency: Duration::ZERO,
            clock: 0,
            newer_fields: Vec::new(),
        }));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let w = world.clone();
        let logged = Arc::new(Condvar::new());
        let l = logged.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                serve(listener, w, l, stop_rx).await;
            });
        });
        let addr = addr_rx.recv().expect("fake started");
        Fake {
            addr,
            url: format!("http://{addr}"),
            world,
            logged,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.world.lock().expect("fake world"))
    }

    /// Blocks until `done` holds of the request log, or `timeout` passes;
    /// returns whether it held. Woken by each request, not by polling.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&[Logged]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut w = self.world.lock().expect("fake world");
        loop {
            if done(&w.log) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            w = self.logged.wait_timeout(w, left).expect("fake world").0;
        }
    }

    /// Blocks until `n` requests with `method` have arrived (answered or
    /// not yet), or `timeout` passes; returns whether they had.
    pub fn wait_arrived(&self, timeout: Duration, method: &str, n: usize) -> bool {
        let deadline = Instant::now() + timeout;
        let mut w = self.world.lock().expect("fake world");
        loop {
            if w.arrived.iter().filter(|m| *m == method).count() >= n {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            w = self.logged.wait_timeout(w, left).expect("fake world").0;
        }
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.with(|w| w.log.clone())
    }

    pub fn count(&self, method: &str) -> usize {
        self.with(|w| w.log.iter().filter(|l| l.method == method).count())
    }

    pub fn clear_log(&self) {
        self.with(|w| w.log.clear())
    }

    pub fn inject(&self, rule: FaultRule) {
        self.with(|w| w.faults.push_back(rule))
    }

    /// Removes every fault not yet used.
    pub fn clear_faults(&self) {
        self.with(|w| w.faults.clear())
    }

    pub fn set_latency(&self, latency: Duration) {
        self.with(|w| w.latency = latency)
    }

    pub fn set_token(&self, token: &str) {
        self.with(|w| w.token = token.to_string())
    }

    /// Sets the hourly limit and what is left of it in the current window.
    pub fn set_rate_limit(&self, limit: u64, remaining: u64, window: Duration) {
        self.with(|w| {
            w.limit = limit;
            w.remaining = remaining;
            w.window = window;
            w.window_start = Some(Instant::now());
        })
    }

    /// Job ids in a project (team-less routes).
    pub fn job_ids(&self, project: &str) -> Vec<String> {
        self.with(|w| {
            w.jobs
                .iter()
                .filter(|((_, p, _), _)| p == project)
                .map(|((_, _, id), _)| id.clone())
                .collect()
        })
    }

    /// The PUT body last accepted for a job.
    pub fn job(&self, team: Option<&str>, project: &str, id: &str) -> Option<Value> {
        self.with(|w| {
            w.jobs
                .get(&(
                    team.map(str::to_string),
                    project.to_string(),
                    id.to_string(),
                ))
                .map(|s| Value::Object(s.body.clone()))
        })
    }

    /// Changes a stored job behind nfcron's back (as the UI would).
    pub fn edit_job(&self, project: &str, id: &str, f: impl FnOnce(&mut Map<String, Value>)) {
        self.with(|w| {
            if let Some(s) = w.jobs.get_mut(&(None, project.to_string(), id.to_string())) {
                f(&mut s.body);
            }
        })
    }

    /// Makes the fake accept PUT body fields its request type lacks, as an
    /// API newer than it would.
    pub fn accept_newer_fields(&self, names: &[&str]) {
        self.with(|w| w.newer_fields = names.iter().map(|n| n.to_string()).collect())
    }

    /// Links a secret group to a job: its `runtimeEnvironment` etc. are
    /// inherited by the job (`group` holds those sections).
    pub fn link_secret_group(&self, project: &str, id: &str, group: Value) {
        self.with(|w| {
            if let (Some(s), Value::Object(group)) = (
                w.jobs.get_mut(&(None, project.to_string(), id.to_string())),
                group,
            ) {
                s.inherited = group;
            }
        })
    }

    /// A manual job (not a cron job) in `project`, as the UI would make.
    pub fn add_manual_job(&self, project: &str, name: &str) {
        let id = name.to_lowercase().replace(' ', "-");
        let mut body = Map::new();
        body.insert("name".into(), json!(name));
        body.insert("id".into(), json!(id));
        body.insert("billing".into(), json!({"deploymentPlan": "nf-compute-10"}));
        body.insert("backoffLimit".into(), json!(0));
        self.with(|w| {
            w.jobs.insert(
                (None, project.to_string(), id),
                Stored {
                    project: project.to_string(),
                    inherited: Map::new(),
                    job_type: "manual",
                    body,
                    created_at: "2026-11-28T00:00:00.000Z".into(),
                    updated_at: "2026-11-28T00:00:00.000Z".into(),
                },
            );
        })
    }

    pub fn delete_job(&self, project: &str, id: &str) {
        self.with(|w| {
            w.jobs.remove(&(None, project.to_string(), id.to_string()));
        })
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: TcpListener,
    world: Arc<Mutex<World>>,
    logged: Arc<Condvar>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let world = world.clone();
                let logged = logged.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(world.clone(), logged.clone(), req));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        }
    }
    connections.abort_all();
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Dropped {}

type Reply = Response<Full<Bytes>>;

async fn handle(
    world: Arc<Mutex<World>>,
    logged: Arc<Condvar>,
    req: Request<Incoming>,
) -> Result<Reply, Dropped> {
    let method = req.method().clone();
    // Ids travel percent-encoded (a job id may hold a tab).
    let path = percent_encoding::percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .into_owned();
    let query = req.uri().query().unwrap_or("").to_string();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();

    // Faults and latency are decided under the lock, applied outside it.
    let (fault, latency) = {
        let mut w = world.lock().expect("world");
        w.arrived.push(method.to_string());
        logged.notify_all();
        let fault = take_fault(&mut w, &method);
        (fault, w.latency)
    };
    let mut delay = latency;
    if let Some(Fault::Delay(d)) = &fault {
        delay += *d;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let job = job_of(&method, &path, &body);
    let mut w = world.lock().expect("world");
    let log = |w: &mut World, status: u16| {
        w.log.push(Logged {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            status,
            at: Instant::now(),
            job: job.clone(),
        });
        logged.notify_all();
    };
    if let Some(Fault::Drop) = fault {
        log(&mut w, 0);
        return Err(Dropped);
    }
    let (status, payload, retry_after) = if let Some(Fault::Status {
        status,
        retry_after,
    }) = fault
    {
        (status, error_body(status, "injected fault"), retry_after)
    } else if let Some(Fault::Echo { status }) = fault {
        let quoted = format!("refused: {}", String::from_utf8_lossy(&body));
        let mut payload = error_body(status, &quoted);
        payload["error"]["details"] = json!({ "body": quoted });
        (status, payload, None)
    } else if let Some(Fault::EchoToken { status }) = fault {
        let token = auth.as_deref().unwrap_or("").trim_start_matches("Bearer ");
        let mut payload = error_body(status, &format!("token {token} is not valid"));
        payload["error"]["details"] = json!({ "request": json!({"token": token}).to_string() });
        (status, payload, None)
    } else if auth.as_deref() != Some(&format!("Bearer {}", w.token)) {
        (
            401,
            error_body(401, "Unauthorized: missing or invalid API token"),
            None,
        )
    } else if consume_rate(&mut w) {
        let reset = reset_secs(&w);
        (429, error_body(429, "Too many requests"), Some(reset))
    } else {
        route(&mut w, &method, &path, &query, &body)
    };
    log(&mut w, status);
    let mut resp = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .header("x-ratelimit-limit", w.limit.to_string())
        .header("x-ratelimit-remaining", w.remaining.to_string())
        .header("x-ratelimit-reset", reset_secs(&w).to_string());
    if let Some(s) = retry_after {
        resp = resp.header("retry-after", s.to_string());
    }
    Ok(resp
        .body(Full::new(Bytes::from(payload.to_string())))
        .expect("response"))
}

fn job_of(method: &Method, path: &str, body: &[u8]) -> Option<String> {
    if method == Method::PUT {
        let v: Value = serde_json::from_slice(body).ok()?;
        return Some(v.get("name")?.as_str()?.to_lowercase().replace(' ', "-"));
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let i = parts.iter().position(|p| *p == "jobs")?;
    parts.get(i + 1).map(|s| s.to_string())
}

fn take_fault(w: &mut World, method: &Method) -> Option<Fault> {
    let i = w
        .faults
        .iter()
        .position(|r| r.times > 0 && r.method.as_ref().is_none_or(|m| m == method))?;
    let rule = &mut w.faults[i];
    if rule.after > 0 {
        rule.after -= 1;
        return None;
    }
    rule.times -= 1;
    let fault = rule.fault.clone();
    if rule.times == 0 {
        w.faults.remove(i);
    }
    Some(fault)
}

/// Counts a request against the window; true when it is over the limit.
fn consume_rate(w: &mut World) -> bool {
    let now = Instant::now();
    match w.window_start {
        Some(start) if now.duration_since(start) < w.window => {}
        _ => {
            w.window_start = Some(now);
            w.remaining = w.limit;
        }
    }
    if w.remaining == 0 {
        return true;
    }
    w.remaining -= 1;
    false
}

fn reset_secs(w: &World) -> u64 {
    match w.window_start {
        Some(start) => w
            .window
            .saturating_sub(start.elapsed())
            .as_secs_f64()
            .ceil() as u64,
        None => w.window.as_secs(),
    }
}

fn error_body(status: u16, message: &str) -> Value {
    json!({"error": {"status": status, "message": message, "id": format!("err-{status}")}})
}

fn route(
    w: &mut World,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
) -> (u16, Value, Option<u64>) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /v1/projects/{p}/... or /v1/teams/{t}/projects/{p}/...
    let (team, rest) = match segments.as_slice() {
        ["v1", "teams", team, "projects", rest @ ..] => (Some(team.to_string()), rest),
        ["v1", "projects", rest @ ..] => (None, rest),
        _ => return (404, error_body(404, "Not found"), None),
    };
    let (status, value) = match (method.clone(), rest) {
        (Method::PUT, [project, "jobs", "cron"]) => put_cron(w, team, project, body),
        (Method::GET, [project, "jobs"]) => list(w, &team, project, query),
        (Method::GET, [project, "jobs", id]) => {
            match w
                .jobs
                .get(&(team.clone(), project.to_string(), id.to_string()))
            {
                Some(s) => (200, json!({"data": get_shape(s)})),
                None => (404, error_body(404, "Job not found")),
            }
        }
        (Method::GET, [project, "jobs", id, sub]) => {
            match w
                .jobs
                .get(&(team.clone(), project.to_string(), id.to_string()))
            {
                Some(s) => sub_resource(s, sub, query),
                None => (404, error_body(404, "Job not found")),
            }
        }
        (Method::DELETE, [project, "jobs", id]) => {
            match w
                .jobs
                .remove(&(team.clone(), project.to_string(), id.to_string()))
            {
                Some(_) => (200, json!({"data": {}})),
                None => (404, error_body(404, "Job not found")),
            }
        }
        _ => (404, error_body(404, "Not found")),
    };
    (status, value, None)
}

const PUT_FIELDS: &[&str] = &[
    "name",
    "description",
    "stageId",
    "infrastructure",
    "tags",
    "billing",
    "backoffLimit",
    "runOnSourceChange",
    "activeDeadlineSeconds",
    "deployment",
    "disabledCI",
    "buildConfiguration",
    "buildSettings",
    "runtimeEnvironment",
    "runtimeFiles",
    "buildArguments",
    "buildFiles",
    "dockerSecretMounts",
    "healthChecks",
    "schedule",
    "suspended",
    "concurrencyPolicy",
];

/// The checks the reference page makes that matter to tests: required
/// fields, their types, the name pattern, the concurrency enum and unknown
/// fields. Problems come back as a 400 whose details name the fields.
fn check_put(body: &Map<String, Value>, newer: &[String]) -> Map<String, Value> {
    let mut problems = Map::new();
    for field in body
        .keys()
        .filter(|k| !PUT_FIELDS.contains(&k.as_str()) && !newer.contains(k))
    {
        problems.insert(field.clone(), json!("is not allowed"));
    }
    match body.get("name").and_then(Value::as_str) {
        Some(name) if valid_name(name) => {}
        _ => {
            problems.insert(
                "name".into(),
                json!("must be 3-52 characters: letters, digits, spaces or hyphens"),
            );
        }
    }
    if !body
        .get("billing")
        .and_then(|b| b.get("deploymentPlan"))
        .is_some_and(Value::is_string)
    {
        problems.insert("billing.deploymentPlan".into(), json!("is required"));
    }
    if !body.get("backoffLimit").is_some_and(Value::is_i64) {
        problems.insert("backoffLimit".into(), json!("must be an integer"));
    }
    if !body.get("schedule").is_some_and(Value::is_string) {
        problems.insert("schedule".into(), json!("is required"));
    }
    if !matches!(
        body.get("concurrencyPolicy").and_then(Value::as_str),
        Some("allow" | "forbid" | "replace")
    ) {
        problems.insert(
            "concurrencyPolicy".into(),
            json!("must be one of allow, forbid, replace"),
        );
    }
    problems
}

fn valid_name(name: &str) -> bool {
    let len = name.chars().count();
    (3..=52).contains(&len)
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            // The pattern's `\s`: a tab separates words too.
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '\t' || c == '-')
        && !name.contains("  ")
        && !name.ends_with([' ', '-'])
}

fn put_cron(w: &mut World, team: Option<String>, project: &str, body: &[u8]) -> (u16, Value) {
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(body) else {
        return (400, error_body(400, "Request body must be a JSON object"));
    };
    let problems = check_put(&body, &w.newer_fields);
    if !problems.is_empty() {
        let mut e = error_body(400, "Validation failed");
        e["error"]["details"] = Value::Object(problems);
        return (400, e);
    }
    let name = body["name"].as_str().unwrap_or_default().to_string();
    let id = name.to_lowercase().replace(' ', "-");
    w.clock += 1;
    let now = format!(
        "2026-11-28T12:{:02}:{:02}.000Z",
        (w.clock / 60) % 60,
        w.clock % 60
    );
    body.insert("id".into(), json!(id));
    let key = (team, project.to_string(), id.clone());
    let created_at = w
        .jobs
        .get(&key)
        .map(|s| s.created_at.clone())
        .unwrap_or_else(|| now.clone());
    let inherited = w
        .jobs
        .get(&key)
        .map(|s| s.inherited.clone())
        .unwrap_or_default();
    let stored = Stored {
        project: project.to_string(),
        inherited,
        job_type: "cron",
        body,
        created_at,
        updated_at: now,
    };
    let mut data = stored.body.clone();
    data.insert("appId".into(), json!(format!("/fake-team/{project}/{id}")));
    data.insert("jobType".into(), json!("cron"));
    data.insert("status".into(), json!({"build": {"status": "SUCCESS"}}));
    data.insert(
        "cluster".into(),
        json!({"id": "nf-europe-west", "name": "nf-europe-west"}),
    );
    data.insert("createdAt".into(), json!(stored.created_at));
    data.insert("updatedAt".into(), json!(stored.updated_at));
    w.jobs.insert(key, stored);
    (200, json!({"data": data}))
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The GET shape (API_NOTES.md): settings nested, concurrency capitalised,
/// server defaults filled in, build settings moved to vcsData.
fn get_shape(s: &Stored) -> Value {
    let b = &s.body;
    let get = |k: &str| b.get(k).cloned();
    let mut out = json!({
        "id": b["id"],
        "appId": format!("/fake-team/{}/{}", s.project, b["id"].as_str().unwrap_or_default()),
        "name": b["name"],
        "tags": get("tags").unwrap_or(json!([])),
        "projectId": s.project,
        "jobType": s.job_type,
        "createdAt": s.created_at,
        "suspended": get("suspended").unwrap_or(json!(false)),
        "disabledCI": get("disabledCI").unwrap_or(json!(false)),
        "disabledCD": false,
        "billing": {"deploymentPlan": b["billing"]["deploymentPlan"]},
        "settings": {
            "backoffLimit": b["backoffLimit"],
            "activeDeadlineSeconds": get("activeDeadlineSeconds").filter(|v| !v.is_null()).unwrap_or(json!(3600)),
            "cron": {
                "schedule": b["schedule"],
                "concurrencyPolicy": capitalise(b["concurrencyPolicy"].as_str().unwrap_or("allow")),
            },
        },
        "cluster": {"id": "nf-europe-west", "name": "nf-europe-west", "namespace": "ns-fake"},
    });
    if let Some(d) = get("description") {
        out["description"] = d;
    }
    if let Some(dep) = b.get("deployment") {
        out["deployment"] = Value::Object(runtime_parts(dep));
        if let Some(vcs) = dep.get("vcs") {
            let mut data = Map::new();
            for k in [
                "projectUrl",
                "projectType",
                "selfHostedVcsId",
                "projectBranch",
            ] {
                if let Some(v) = vcs.get(k) {
                    data.insert(k.into(), v.clone());
                }
            }
            let df = b.get("buildSettings").and_then(|s| s.get("dockerfile"));
            let df = |k: &str, default: &str| {
                df.and_then(|d| d.get(k)).cloned().unwrap_or(json!(default))
            };
            data.insert("dockerFilePath".into(), df("dockerFilePath", "/Dockerfile"));
            data.insert("dockerWorkDir".into(), df("dockerWorkDir", "/"));
            out["vcsData"] = Value::Object(data);
        }
    }
    if let Some(bc) = get("buildConfiguration") {
        out["buildConfiguration"] = bc;
    }
    match b.get("buildSettings") {
        Some(s) if s.get("dockerfile").is_some() => {
            let engine = s["dockerfile"]
                .get("buildEngine")
                .cloned()
                .unwrap_or(json!("buildkit"));
            out["buildEngineConfiguration"] = json!({"buildEngine": engine});
        }
        Some(s) if s.get("buildpack").is_some() => {
            // The read has no build context (GetJobResult).
            let mut buildpack = s["buildpack"].clone();
            if let Some(b) = buildpack.as_object_mut() {
                b.remove("buildContext");
            }
            out["buildEngineConfiguration"] =
                json!({"buildEngine": "buildpack", "buildpack": buildpack});
        }
        _ => {}
    }
    out
}

/// Where an external image lives, as the API tells from its host, and its
/// path without that host (GetJobDeploymentResult).
fn registry_of(image: &str) -> (&'static str, String) {
    let (first, rest) = image.split_once('/').unwrap_or(("", image));
    let is_host = first.contains('.') || first.contains(':') || first == "localhost";
    if !is_host {
        return ("dockerhub", image.to_string());
    }
    let provider = match first {
        "ghcr.io" => "github",
        "registry.gitlab.com" => "gitlab",
        "docker.io" | "index.docker.io" => "dockerhub",
        h if h.contains(".dkr.ecr.") => "ecr",
        h if h.ends_with(".azurecr.io") => "acr",
        h if h.ends_with("-docker.pkg.dev") => "gar",
        _ => "custom",
    };
    (provider, rest.to_string())
}

/// The job's own section, the inherited one, or both, as `show` asks.
fn shown(s: &Stored, section: &str, query: &str) -> Value {
    let show = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("show="))
        .unwrap_or("all");
    let own = s.body.get(section).cloned().unwrap_or(json!({}));
    let inherited = s.inherited.get(section).cloned().unwrap_or(json!({}));
    match show {
        "this" => own,
        "inherited" => inherited,
        _ => {
            let mut all = inherited;
            if let (Value::Object(all), Value::Object(own)) = (&mut all, own) {
                all.extend(own);
            }
            all
        }
    }
}

/// The runtime overrides and storage of a PUT's `deployment` as reads give
/// them: storage only as the ephemeral and /dev/shm sizes.
fn runtime_parts(dep: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for k in ["docker", "buildpack"] {
        if let Some(v) = dep.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    if let Some(storage) = dep.get("storage") {
        let mut kept = Map::new();
        for k in ["ephemeralStorage", "shmSize"] {
            if let Some(v) = storage.get(k) {
                kept.insert(k.into(), v.clone());
            }
        }
        out.insert("storage".into(), Value::Object(kept));
    }
    out
}

fn sub_resource(s: &Stored, sub: &str, query: &str) -> (u16, Value) {
    let b = &s.body;
    match sub {
        "deployment" => {
            let dep = b.get("deployment").cloned().unwrap_or(json!({}));
            let mut out = runtime_parts(&dep);
            if let Some(ext) = dep.get("external") {
                let (provider, path) = registry_of(ext["imagePath"].as_str().unwrap_or_default());
                out.insert(
                    "external".into(),
                    json!({"imagePath": path, "registryProvider": provider, "privateImage": ext.get("credentials").is_some()}),
                );
            }
            // A job built from version control deploys its own build.
            if let Some(vcs) = dep.get("vcs") {
                let id = b["id"].as_str().unwrap_or_default();
                out.insert(
                    "internal".into(),
                    json!({
                        "appId": format!("/fake-team/{}/{id}", s.project),
                        "nfObjectId": id,
                        "nfObjectType": "job",
                        "repository": vcs["projectUrl"],
                        "branch": vcs["projectBranch"],
                        "buildId": "fake-build-1",
                        "buildSHA": "latest",
                    }),
                );
            }
            if let Some(int) = dep.get("internal") {
                let object = int.get("id").and_then(Value::as_str).unwrap_or("builder");
                out.insert(
                    "internal".into(),
                    json!({
                        "appId": format!("/fake-team/{}/{object}", s.project),
                        "nfObjectId": object,
                        "nfObjectType": "service",
                        "repository": "https://github.com/acme/app",
                        "branch": int.get("branch").cloned().unwrap_or(json!("main")),
                        "buildId": int.get("buildId").cloned().unwrap_or(json!("fake-build-1")),
                        "buildSHA": int.get("buildSHA").cloned().unwrap_or(json!("latest")),
                    }),
                );
            }
            (200, json!({"data": out}))
        }
        "runtime-environment" => (
            200,
            json!({"data": {"runtimeEnvironment": shown(s, "runtimeEnvironment", query), "runtimeFiles": shown(s, "runtimeFiles", query)}}),
        ),
        "build-arguments" => (
            200,
            json!({"data": {"buildArguments": shown(s, "buildArguments", query), "buildFiles": shown(s, "buildFiles", query)}}),
        ),
        "health-checks" => {
            let checks: Vec<Value> = b
                .get("healthChecks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    // Both ports, the unused one `null`; `path` and `cmd`
                    // `null` when not set (GetJobHealthchecksResult).
                    let port = c
                        .as_object_mut()
                        .and_then(|o| o.remove("port"))
                        .unwrap_or(Value::Null);
                    let tcp = c["protocol"] == "TCP";
                    c["httpPort"] = if tcp { Value::Null } else { port.clone() };
                    c["tcpSocketPort"] = if tcp { port } else { Value::Null };
                    for k in ["path", "cmd"] {
                        if c.get(k).is_none() {
                            c[k] = Value::Null;
                        }
                    }
                    c
                })
                .collect();
            (200, json!({"data": {"healthChecks": checks}}))
        }
        _ => (404, error_body(404, "Not found")),
    }
}

fn list(w: &World, team: &Option<String>, project: &str, query: &str) -> (u16, Value) {
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let per_page = match param("per_page").map(|v| v.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        _ => return (400, error_body(400, "per_page must be 1-100")),
    };
    let offset = param("cursor")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let all: Vec<Value> = w
        .jobs
        .iter()
        .filter(|((t, p, _), _)| t == team && p == project)
        .map(|(_, s)| {
            json!({"id": s.body["id"], "projectId": project, "appId": format!("/fake-team/{project}/{}", s.body["id"].as_str().unwrap_or_default()),
                   "name": s.body["name"], "tags": s.body.get("tags").cloned().unwrap_or(json!([])), "jobType": s.job_type,
                   "disabledCI": false, "disabledCD": false, "suspended": s.body.get("suspended").cloned().unwrap_or(json!(false))})
        })
        .collect();
    let page: Vec<Value> = all.iter().skip(offset).take(per_page).cloned().collect();
    let next = offset + page.len();
    let has_next = next < all.len();
    (
        200,
        json!({"data": {"jobs": page}, "pagination": {"hasNextPage": has_next, "cursor": format!("{next:024}"), "count": page.len()}}),
    )
}
