//! A repository's quarantine list on the client side: fetched from the server
//! (`GET /api/v1/repos/{owner}/{repo}/quarantine`, every page) or read from a saved copy of that
//! answer, and which of its entries apply — active, not expired — to a test's identity.

use std::path::Path;

use anyhow::{Context, Result, bail};
use flakeguard_core::TestKey;
use reqwest::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::commands::upload::send::{self, Retry, RetryEvent};
use crate::commands::upload::target::Endpoint;

/// Entries per page asked of the server (its maximum).
const PER_PAGE: u32 = 100;
/// A bound on the pages followed, against a server that never stops answering.
const MAX_PAGES: u64 = 10_000;

/// One quarantine as the API lists it. Only the test's identity (`scope`, `name`, and
/// `classname`/`variant` when it has them) is required of a saved list; `state` defaults to
/// `active`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub(crate) struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) test_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key: Option<String>,
    pub(crate) scope: String,
    #[serde(default)]
    pub(crate) classname: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) variant: Option<String>,
    #[serde(default)]
    pub(crate) file: Option<String>,
    #[serde(default = "active")]
    pub(crate) state: String,
    #[serde(default)]
    pub(crate) owner: Option<String>,
    #[serde(default)]
    pub(crate) reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) created_at: Option<String>,
    #[serde(default)]
    pub(crate) expires_at: Option<String>,
}

fn active() -> String {
    "active".to_owned()
}

impl Entry {
    /// The test's identity, as stored: what ingestion computes from a report.
    pub(crate) fn test_key(&self) -> TestKey {
        TestKey {
            scope: self.scope.clone(),
            classname: self.classname.clone(),
            name: self.name.clone(),
            variant: self.variant.clone(),
        }
    }

    fn expiry(&self) -> Option<OffsetDateTime> {
        self.expires_at
            .as_deref()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
    }

    /// Whether the quarantine applies at `now`: active (not merely proposed) and not expired.
    pub(crate) fn applies(&self, now: OffsetDateTime) -> bool {
        self.state == "active" && self.expiry().is_none_or(|at| at > now)
    }

    /// `owner @x, until 2026-12-01: reason` — what a person wants to know about it.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(owner) = self.owner.as_deref().filter(|o| !o.is_empty()) {
            parts.push(format!("owner {owner}"));
        }
        match self.expires_at.as_deref() {
            Some(at) => parts.push(format!("until {}", at.get(..10).unwrap_or(at))),
            None => parts.push("no expiry".to_owned()),
        }
        let mut text = parts.join(", ");
        if !self.reason.trim().is_empty() {
            text.push_str(": ");
            text.push_str(self.reason.trim());
        }
        text
    }
}

/// The list as the API answers it (one page; a saved list holds every entry in one).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct Page {
    pub(crate) items: Vec<Entry>,
    #[serde(default = "first")]
    pub(crate) page: u64,
    #[serde(default)]
    pub(crate) per_page: u64,
    #[serde(default)]
    pub(crate) total: u64,
}

fn first() -> u64 {
    1
}

impl Page {
    /// One page holding every entry: what `quarantine export --format json` writes.
    pub(crate) fn whole(items: Vec<Entry>) -> Page {
        let n = items.len() as u64;
        Page {
            items,
            page: 1,
            per_page: n,
            total: n,
        }
    }
}

/// Reads a saved list: the API's JSON answer (`{"items": […], …}`) or a bare array of entries.
pub(crate) fn load(path: &Path) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the quarantine list {}", path.display()))?;
    parse(&text).with_context(|| format!("{}: not a quarantine list", path.display()))
}

fn parse(text: &str) -> Result<Vec<Entry>> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Saved {
        Page(Page),
        Entries(Vec<Entry>),
    }
    let saved: Saved = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "{e}; expected the JSON of GET /api/v1/repos/{{owner}}/{{repo}}/quarantine \
             ({{\"items\": [{{\"scope\", \"classname\", \"name\", \"state\", …}}]}}) or an array of such entries"
        )
    })?;
    let entries = match saved {
        Saved::Page(page) => {
            if page.total > page.items.len() as u64 {
                bail!(
                    "it holds {} of {} entries (one page of the API's answer); save the whole \
                     list with `flakeguard quarantine export --format json`",
                    page.items.len(),
                    page.total
                );
            }
            page.items
        }
        Saved::Entries(entries) => entries,
    };
    for (i, entry) in entries.iter().enumerate() {
        if entry.name.trim().is_empty() {
            bail!("entry {i}: the test's name is empty");
        }
        if let Some(at) = &entry.expires_at
            && OffsetDateTime::parse(at, &Rfc3339).is_err()
        {
            bail!(
                "entry {i} ({}): expires_at {at:?} is not an RFC 3339 time",
                entry.name
            );
        }
    }
    Ok(entries)
}

/// Every live quarantine of the endpoint's repository, following the pages.
pub(crate) async fn fetch(endpoint: &Endpoint, retry: Retry) -> Result<Vec<Entry>> {
    let client = send::client(retry.timeout)?;
    let authorization = send::authorization(&endpoint.token)?;
    let mut entries = Vec::new();
    let mut page = 1;
    loop {
        let url = endpoint.quarantine_url(page, PER_PAGE);
        let answer = send::with_retries(
            "quarantine list request",
            &retry,
            |_| {
                client
                    .get(url.clone())
                    .header(AUTHORIZATION, authorization.clone())
            },
            |event| {
                if let RetryEvent::Waiting { warning, .. } = event {
                    eprintln!("{warning}");
                }
            },
        )
        .await?;
        let body: Page = serde_json::from_slice(&answer.body).with_context(|| {
            format!(
                "the server answered HTTP {} to the quarantine list request, but not with the expected JSON",
                answer.status.as_u16()
            )
        })?;
        let last = body.items.is_empty();
        entries.extend(body.items);
        if last || entries.len() as u64 >= body.total || page >= MAX_PAGES {
            return Ok(entries);
        }
        page += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = r#"{"items":[
        {"id":1,"test_id":7,"key":"tests/test_cart.py › tests.test_cart.TestCart › test_total[1-2]",
         "scope":"tests/test_cart.py","classname":"tests.test_cart.TestCart","name":"test_total","variant":"1-2",
         "file":"tests/test_cart.py","state":"active","owner":"@acme/cart","reason":"timing","created_by":"token:ci",
         "created_at":"2026-11-01T10:00:00Z","expires_at":"2026-12-01T10:00:00Z"},
        {"id":2,"test_id":8,"key":"s › c › t","scope":"s","classname":"c","name":"t","variant":null,"file":null,
         "state":"proposed","owner":null,"reason":"","created_by":"policy:auto","created_at":"2026-11-01T10:00:00Z","expires_at":null}
    ],"page":1,"per_page":30,"total":2}"#;

    fn at(t: &str) -> OffsetDateTime {
        OffsetDateTime::parse(t, &Rfc3339).unwrap()
    }

    #[test]
    fn the_apis_answer_is_a_list_and_keys_are_the_stored_identity() {
        let entries = parse(API).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0].test_key(),
            TestKey::from_parts(
                Some("./tests/test_cart.py"),
                "pytest",
                Some("tests.test_cart.TestCart"),
                "test_total[1-2]"
            )
        );
        assert_eq!(
            entries[0].describe(),
            "owner @acme/cart, until 2026-12-01: timing"
        );
    }

    #[test]
    fn only_active_unexpired_entries_apply() {
        let entries = parse(API).unwrap();
        assert!(entries[0].applies(at("2026-11-20T00:00:00Z")));
        assert!(!entries[0].applies(at("2026-12-01T10:00:00Z")), "expired");
        assert!(!entries[1].applies(at("2026-11-20T00:00:00Z")), "proposed");
    }

    #[test]
    fn a_bare_array_with_only_identities_is_accepted() {
        let entries = parse(r#"[{"scope": "s", "name": "t"}]"#).unwrap();
        assert_eq!(entries[0].state, "active");
        assert_eq!(
            entries[0].test_key(),
            TestKey::from_parts(None, "s", None, "t")
        );
    }

    #[test]
    fn partial_or_malformed_lists_are_refused_with_the_reason() {
        let one_page = API.replace("\"total\":2", "\"total\":250");
        let err = parse(&one_page).unwrap_err().to_string();
        assert!(err.contains("holds 2 of 250 entries"), "{err}");
        let err = parse(r#"{"things": []}"#).unwrap_err().to_string();
        assert!(err.contains("expected the JSON of GET"), "{err}");
        let err = parse(r#"[{"scope": "s", "name": "t", "expires_at": "soon"}]"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expires_at \"soon\""), "{err}");
        let err = parse(r#"[{"scope": "s", "name": " "}]"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("name is empty"), "{err}");
    }

    #[test]
    fn a_whole_page_round_trips() {
        let entries = parse(API).unwrap();
        let text = serde_json::to_string(&Page::whole(entries.clone())).unwrap();
        assert_eq!(parse(&text).unwrap(), entries);
    }
}
