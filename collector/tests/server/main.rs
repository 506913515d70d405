//! The collector served in-process (`server::run` on a `127.0.0.1:0` listener, plaintext, over a
//! temporary store) and driven with the generated gRPC clients: ingest, queries, shutdown, and
//! what agents may claim (`trust`).

mod harness;
mod hostnames;
mod ingest;
mod query;
mod shutdown;
mod trust;
