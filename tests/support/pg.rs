//! A schema of its own per test in the PostgreSQL server the machines run
//! on 127.0.0.1:5432 (trust auth, database `test`), dropped at the end, so
//! tests run in parallel. Without the server: under `CI=true` the test
//! fails (`.ci/run` starts it); elsewhere it is skipped with a reason.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

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
