//! Workspace integration tests: one binary, modules by feature.
//!
//! Every story runs on a fresh SQLite file and, when `JIAYUAN_TEST_PG_URL` names a PostgreSQL
//! server, again on a fresh PostgreSQL database (tests whose names contain `postgres`).

mod support;

/// The access matrix (route × role × scope × enablement), the route inventory, and the headline
/// authentication and authorization cases.
mod access;
/// Idempotency-Key on creates: replays, reused keys, no duplicates.
mod idempotency;
/// A fresh database set up through the CLI's code and the API: ledgers imported kind by kind,
/// a firm's residents, a dog; referred rows; an export that imports again unchanged.
mod installer;
/// Misbehaving plugins behind the engine: panics, hangs, quarantine.
mod misbehaviour;
/// Need-to-know by audience through the router, guards, records at grid cells, two times, the
/// reference index.
mod need_to_know;
/// Canary identity numbers and phones never reach logs or response bodies; data comes back masked.
mod privacy;
/// Record exports per plugin kind: scoped like the listing, masked, audited with their purpose.
mod record_exports;
/// Dogs registered, refused, licensed and expired through the HTTP API; deadlines; enablement.
mod story;
