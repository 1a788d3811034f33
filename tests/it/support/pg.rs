//! A schema of its own per test in the PostgreSQL server the machines run
//! on 127.0.0.1:5432 (trust auth, database `test`), dropped at the end, so
//! tests run in parallel. Without the server: under `CI=true` the test
//! fails (`.ci/run` starts it); elsewhere it is skipped with a reason.
#![allow(dead_code)]

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

pub struct Db {
    pub schema: String,
    /// `--state` for this test's schema.
    pub url: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn admin() -> Result<postgres::Client, postgres::Error> {
    postgres::Client::connect(SERVER, postgres::NoTls)
}

impl Db {
    /// A fresh, empty schema, or `None` (skip) when no server runs
    /// outside CI.
    pub fn new(test: &str) -> Option<Db> {
        let mut client = match admin() {
            Ok(client) => client,
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!(
                    "PostgreSQL on 127.0.0.1:5432 is needed under CI=true (.ci/run starts it): {e}"
                )
            }
            Err(e) => {
                eprintln!("skipped {test}: no PostgreSQL on 127.0.0.1:5432 ({e})");
                return None;
            }
        };
        let schema = format!(
            "t_{}_{}_{}",
            test.chars()
                .filter(char::is_ascii_alphanumeric)
                .take(20)
                .collect::<String>(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        )
        .to_lowercase();
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .expect("create schema");
        let url = format!("{SERVER}?options=-csearch_path%3D{schema}");
        Some(Db { schema, url })
    }

    /// A query in this schema; rows as text.
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let mut client = admin().expect("connect");
        client
            .batch_execute(&format!("SET search_path TO {}", self.schema))
            .expect("search_path");
        client
            .simple_query(sql)
            .expect("query")
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }

    /// One number from a query.
    pub fn count(&self, sql: &str) -> i64 {
        self.query(sql)[0][0]
            .as_deref()
            .expect("a value")
            .parse()
            .expect("a number")
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Ok(mut client) = admin() {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

/// A TCP relay to the PostgreSQL server that a test can cut, as a server
/// restart would: every open connection is closed and new ones are closed
/// on accept until [`Relay::restore`].
pub struct Relay {
    pub port: u16,
    state: Arc<Mutex<RelayState>>,
}

struct RelayState {
    up: bool,
    open: Vec<TcpStream>,
}

impl Relay {
    pub fn spawn() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(RelayState {
            up: true,
            open: Vec::new(),
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let mut state = shared.lock().expect("relay state");
                if !state.up {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect("127.0.0.1:5432") else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    let (Ok(mut from), Ok(mut to)) = (from, to) else {
                        continue;
                    };
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
                state.open.push(client);
                state.open.push(server);
            }
        });
        Relay { port, state }
    }

    /// Closes every connection; refuses new ones.
    pub fn cut(&self) {
        let mut state = self.state.lock().expect("relay state");
        state.up = false;
        for stream in state.open.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.state.lock().expect("relay state").up = true;
    }

    /// `url` (a [`Db`]'s) through this relay.
    pub fn url(&self, url: &str) -> String {
        url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", self.port))
    }
}
