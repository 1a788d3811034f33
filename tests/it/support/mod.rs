//! Servers and harnesses the tests share: Git servers (HTTP, TLS, SSH),
//! a hostile HTTP server, PostgreSQL schemas and a TCP proxy, the
//! `watch` sidecar harness, and an apply killed at several points.

pub mod git_servers;
pub mod hostile_server;
pub mod kills;
pub mod pg;
pub mod sidecar;
pub mod ts_types;
