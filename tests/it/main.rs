//! The integration tests, one crate (uv's `crates/uv/tests/it`): every
//! module runs the real `nfcron` binary, most against the fake Northflank
//! API (`examples/fake-northflank/server.rs`, also the `fake-northflank`
//! example) on 127.0.0.1. Modules are named for the behaviour they check.
//! Shared pieces: `common` (workspace, binary runner with or without a
//! deadline, manifests, state, Git and tool helpers) and `support`
//! (servers, the `watch` sidecar harness, PostgreSQL); benches reuse
//! `support` by `#[path]`.

mod common;
#[path = "../../examples/fake-northflank/server.rs"]
mod fake;
mod support;

mod action;
mod api_client;
mod blocking;
mod cli;
mod completions;
mod crash;
mod daemon_errors;
mod deploy;
mod docs;
mod drift;
mod error_policy;
mod git;
mod git_hostile;
mod git_servers;
mod git_ssh;
mod git_tree;
mod github_output;
mod ha_watch;
mod import;
mod listener;
mod manifests;
mod notify;
mod observability;
mod official_types;
mod pre_commit;
mod properties;
mod prune_guard;
mod reconcile;
mod schedule;
mod schema;
mod schema_ajv;
mod schema_cli;
mod secrets;
mod sidecar_ops;
mod signatures;
mod status_page;
mod store_postgres;
mod store_postgres_faults;
mod store_state;
mod validate;
mod watch;
