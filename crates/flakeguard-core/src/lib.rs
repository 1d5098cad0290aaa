//! FlakeGuard's domain: test identity, runs and executions, failure signatures, the
//! repository policy (`.flakeguard.yml`) and the flakiness scoring engine.
//!
//! Everything here is pure and deterministic: no I/O, no async, and the clock is always
//! passed in, so the same history and the same `now` give the same verdicts.
#![forbid(unsafe_code)]

pub mod codeowners;
pub mod config;
pub mod key;
pub mod model;
pub mod policy;
pub mod scoring;
pub mod signature;

pub use codeowners::Codeowners;
pub use config::RepoConfig;
pub use key::TestKey;
pub use model::{Execution, Outcome, Run, RunId, TestHistory};
pub use policy::Policy;
pub use scoring::{
    Evidence, EvidenceKind, Priority, Recommendation, Status, TestScore, score_all, score_all_with,
};
pub use signature::{normalize_message, signature, signature_hex};
