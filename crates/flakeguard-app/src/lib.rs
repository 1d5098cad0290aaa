//! FlakeGuard's use cases, between the HTTP/CLI surfaces and the storage port: reading the
//! settings, turning uploaded reports into a stored run, rescoring a repository, API tokens,
//! the background jobs (`jobs`) the worker runs, and the GitHub App's events and reports
//! (`github`).
//!
//! Nothing here knows HTTP; everything takes an `&dyn Store` (and jobs a `&dyn JobQueue`).
#![forbid(unsafe_code)]

pub mod github;
pub mod ingest;
pub mod jobs;
pub mod policy;
pub mod quarantine;
pub mod rescore;
pub mod settings;
pub mod tokens;

pub use ingest::{
    FailureStatus, FailureVerdict, IngestError, IngestResult, ReportFile, ReportVerdict, RunMeta,
    Timings, ingest_reports, report_verdict,
};
pub use policy::{PolicySource, RepoPolicy, effective_config};
pub use rescore::{Rescored, derived_state, rescore, rescore_with};
pub use settings::{Environment, GitHubSettings, LogLevel, Secret, Settings, SettingsError};
