//! The GitHub App's pure parts: webhook payloads as typed [`events`], and the [`report`]
//! FlakeGuard writes back (check run, pull request comment, flaky-test issue).

pub mod events;
pub mod report;
