//! Where the reports go and what run they belong to, and which server a quarantine list comes
//! from: the flags, and for each one left out its environment variable (`FLAKEGUARD_*`, or
//! what GitHub Actions sets in every job).

use anyhow::{Result, bail};
use flakeguard_store::RepoSlug;
use reqwest::Url;

use crate::cli::{Secret, ServerArgs, UploadOptions};

/// A server, a token and the repository it is asked about.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) server: Url,
    pub(crate) token: Secret,
    pub(crate) repo: RepoSlug,
}

/// Everything the upload request needs besides the reports.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) endpoint: Endpoint,
    pub(crate) commit: String,
    pub(crate) branch: Option<String>,
    pub(crate) run_id: Option<String>,
    pub(crate) attempt: Option<u32>,
    pub(crate) job: Option<String>,
    pub(crate) pr: Option<u64>,
}

/// Looks a name up in `env`; empty values count as absent: CI systems often set a variable
/// to nothing.
fn lookup(env: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn flag(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The server's three values, each from its flag or its variable.
fn server_values(
    args: &ServerArgs,
    env: &impl Fn(&str) -> Option<String>,
) -> (Option<String>, Option<String>, Option<String>) {
    let server = flag(&args.server).or_else(|| lookup(env, "FLAKEGUARD_SERVER"));
    let token = args
        .token
        .as_ref()
        .map(|t| t.expose().trim().to_owned())
        .filter(|t| !t.is_empty())
        .or_else(|| lookup(env, "FLAKEGUARD_TOKEN"));
    let repo = flag(&args.repo).or_else(|| lookup(env, "GITHUB_REPOSITORY"));
    (server, token, repo)
}

impl Endpoint {
    /// Resolves `--server`, `--token` and `--repo`, falling back to `env` (which answers
    /// `None` for unset variables).
    pub(crate) fn resolve(args: &ServerArgs, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let (server, token, repo) = server_values(args, &env);
        let missing = missing(&[
            (server.is_none(), "--server (or FLAKEGUARD_SERVER)"),
            (token.is_none(), "--token (or FLAKEGUARD_TOKEN)"),
            (repo.is_none(), "--repo (or GITHUB_REPOSITORY)"),
        ]);
        let (Some(server), Some(token), Some(repo)) = (server, token, repo) else {
            bail!("missing {missing}");
        };
        Endpoint::checked(server, token, repo)
    }

    fn checked(server: String, token: String, repo: String) -> Result<Self> {
        let server = parse_server(&server)?;
        if !token.chars().all(|c| c.is_ascii_graphic()) {
            bail!("--token / FLAKEGUARD_TOKEN: only printable ASCII characters can be sent");
        }
        let repo = RepoSlug::parse(&repo)
            .map_err(|e| anyhow::anyhow!("--repo / GITHUB_REPOSITORY: {e}"))?;
        Ok(Endpoint {
            server,
            token: Secret::new(token),
            repo,
        })
    }

    /// `{server}{path}` keeping any path prefix the server URL has.
    fn url(&self, path: &str) -> Url {
        let mut url = self.server.clone();
        let joined = format!("{}{path}", url.path().trim_end_matches('/'));
        url.set_path(&joined);
        url
    }

    /// `{server}/api/v1/repos/{owner}/{repo}/quarantine?page=…&per_page=…`.
    pub(crate) fn quarantine_url(&self, page: u64, per_page: u32) -> Url {
        let mut url = self.url(&format!(
            "/api/v1/repos/{}/{}/quarantine",
            self.repo.owner(),
            self.repo.name()
        ));
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("per_page", &per_page.to_string());
        url
    }
}

impl Target {
    /// Resolves the flags, falling back to `env` (which answers `None` for unset variables).
    pub(crate) fn resolve(
        args: &UploadOptions,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let (server, token, repo) = server_values(&args.server, &env);
        let commit = flag(&args.commit).or_else(|| lookup(&env, "GITHUB_SHA"));
        let missing = missing(&[
            (server.is_none(), "--server (or FLAKEGUARD_SERVER)"),
            (token.is_none(), "--token (or FLAKEGUARD_TOKEN)"),
            (repo.is_none(), "--repo (or GITHUB_REPOSITORY)"),
            (commit.is_none(), "--commit (or GITHUB_SHA)"),
        ]);
        let (Some(server), Some(token), Some(repo), Some(commit)) = (server, token, repo, commit)
        else {
            bail!("missing {missing}");
        };
        let endpoint = Endpoint::checked(server, token, repo)?;
        let attempt = match args.attempt {
            Some(n) => Some(n),
            None => lookup(&env, "GITHUB_RUN_ATTEMPT")
                .map(|v| match v.parse::<u32>() {
                    Ok(n) if n >= 1 => Ok(n),
                    _ => Err(anyhow::anyhow!(
                        "GITHUB_RUN_ATTEMPT: expected a number from 1, got {v:?}"
                    )),
                })
                .transpose()?,
        };

        Ok(Target {
            endpoint,
            commit,
            // On a pull_request event GITHUB_REF_NAME is `<number>/merge`; the branch being
            // tested is GITHUB_HEAD_REF, which is set only on those events.
            branch: flag(&args.branch)
                .or_else(|| lookup(&env, "GITHUB_HEAD_REF"))
                .or_else(|| lookup(&env, "GITHUB_REF_NAME")),
            run_id: flag(&args.run_id).or_else(|| lookup(&env, "GITHUB_RUN_ID")),
            attempt,
            job: flag(&args.job).or_else(|| lookup(&env, "GITHUB_JOB")),
            pr: args.pr.or_else(|| {
                lookup(&env, "GITHUB_REF")
                    .as_deref()
                    .and_then(pull_request_number)
            }),
        })
    }

    /// `{server}/api/v1/ingest?repo=…&commit=…&…`, leaving out what is unknown.
    pub(crate) fn ingest_url(&self) -> Url {
        let mut url = self.endpoint.url("/api/v1/ingest");
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("repo", &self.endpoint.repo.to_string());
            query.append_pair("commit", &self.commit);
            let optional = [
                ("branch", self.branch.clone()),
                ("run_id", self.run_id.clone()),
                ("attempt", self.attempt.map(|n| n.to_string())),
                ("job", self.job.clone()),
                ("pr", self.pr.map(|n| n.to_string())),
            ];
            for (name, value) in optional {
                if let Some(value) = value {
                    query.append_pair(name, &value);
                }
            }
        }
        url
    }
}

/// `a, b and c` of the requirements that are missing.
fn missing(requirements: &[(bool, &str)]) -> String {
    let missing: Vec<&str> = requirements
        .iter()
        .filter(|(absent, _)| *absent)
        .map(|(_, what)| *what)
        .collect();
    join_and(&missing)
}

fn parse_server(server: &str) -> Result<Url> {
    let url = Url::parse(server).map_err(|e| {
        anyhow::anyhow!("--server / FLAKEGUARD_SERVER: {server:?} is not a URL ({e})")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("--server / FLAKEGUARD_SERVER: expected an http:// or https:// URL, got {server:?}");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("--server / FLAKEGUARD_SERVER: expected a base URL without ?query or #fragment");
    }
    if !url.username().is_empty() || url.password().is_some() {
        // The token is the credential; a password in the URL would also end up in logs.
        bail!("--server / FLAKEGUARD_SERVER: the URL must not contain a user name or password");
    }
    Ok(url)
}

/// `refs/pull/123/merge` → 123, what GitHub Actions sets on pull_request events.
fn pull_request_number(git_ref: &str) -> Option<u64> {
    git_ref
        .strip_prefix("refs/pull/")?
        .strip_suffix("/merge")?
        .parse()
        .ok()
}

fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(flags: &[&str]) -> UploadOptions {
        let argv = ["flakeguard", "upload"]
            .iter()
            .chain(flags)
            .chain(&["r.xml"]);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Upload(args) => args.options,
            other => panic!("parsed as {other:?}"),
        }
    }

    fn resolve(flags: &[&str], vars: &[(&str, &str)]) -> Result<Target> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Target::resolve(&args(flags), |name| vars.get(name).cloned())
    }

    const GITHUB: &[(&str, &str)] = &[
        ("FLAKEGUARD_SERVER", "https://fg.example.com/"),
        ("FLAKEGUARD_TOKEN", "fgt_env\n"),
        ("GITHUB_REPOSITORY", "acme/shop"),
        ("GITHUB_SHA", "abc123"),
        ("GITHUB_REF", "refs/heads/main"),
        ("GITHUB_REF_NAME", "main"),
        ("GITHUB_HEAD_REF", ""),
        ("GITHUB_RUN_ID", "9001"),
        ("GITHUB_RUN_ATTEMPT", "2"),
        ("GITHUB_JOB", "test"),
    ];

    #[test]
    fn github_actions_variables_fill_every_field() {
        let t = resolve(&[], GITHUB).unwrap();
        assert_eq!(t.endpoint.token.expose(), "fgt_env");
        assert_eq!(
            t.ingest_url().as_str(),
            "https://fg.example.com/api/v1/ingest?repo=acme%2Fshop&commit=abc123&branch=main&run_id=9001&attempt=2&job=test"
        );
    }

    #[test]
    fn flags_win_over_the_environment() {
        let t = resolve(
            &[
                "--server",
                "http://localhost:8080/fg",
                "--token",
                "fgt_flag",
                "--repo",
                "o/r",
                "--commit",
                "def",
                "--branch",
                "feature/a b&c",
                "--run-id",
                "7",
                "--attempt",
                "3",
                "--job",
                "lint",
                "--pr",
                "12",
            ],
            GITHUB,
        )
        .unwrap();
        assert_eq!(t.endpoint.token.expose(), "fgt_flag");
        assert_eq!(
            t.ingest_url().as_str(),
            "http://localhost:8080/fg/api/v1/ingest?repo=o%2Fr&commit=def&branch=feature%2Fa+b%26c&run_id=7&attempt=3&job=lint&pr=12"
        );
    }

    #[test]
    fn pull_request_events_give_the_head_branch_and_the_number() {
        let mut vars = GITHUB.to_vec();
        vars.retain(|(k, _)| !matches!(*k, "GITHUB_REF" | "GITHUB_REF_NAME" | "GITHUB_HEAD_REF"));
        vars.extend([
            ("GITHUB_REF", "refs/pull/42/merge"),
            ("GITHUB_REF_NAME", "42/merge"),
            ("GITHUB_HEAD_REF", "fix/login"),
        ]);
        let t = resolve(&[], &vars).unwrap();
        assert_eq!(t.branch.as_deref(), Some("fix/login"));
        assert_eq!(t.pr, Some(42));
    }

    #[test]
    fn every_missing_requirement_is_named_with_its_variable_on_one_line() {
        let err = resolve(&[], &[]).unwrap_err().to_string();
        assert_eq!(
            err,
            "missing --server (or FLAKEGUARD_SERVER), --token (or FLAKEGUARD_TOKEN), --repo (or GITHUB_REPOSITORY) and --commit (or GITHUB_SHA)"
        );
        let err = resolve(&["--repo", "  "], &GITHUB[..2])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "missing --repo (or GITHUB_REPOSITORY) and --commit (or GITHUB_SHA)"
        );
    }

    #[test]
    fn bad_values_are_refused_before_anything_is_sent() {
        let with = |name: &'static str, value: &'static str| {
            let mut vars = GITHUB.to_vec();
            vars.retain(|(k, _)| *k != name);
            vars.push((name, value));
            resolve(&[], &vars).unwrap_err().to_string()
        };
        assert!(with("FLAKEGUARD_SERVER", "fg.example.com").contains("is not a URL"));
        assert!(with("FLAKEGUARD_SERVER", "ftp://fg.example.com").contains("http:// or https://"));
        assert!(with("FLAKEGUARD_SERVER", "https://u:p@fg.example.com").contains("user name"));
        assert!(with("FLAKEGUARD_SERVER", "https://fg.example.com/?x=1").contains("?query"));
        assert!(with("FLAKEGUARD_TOKEN", "fgt a").contains("printable ASCII"));
        assert!(with("GITHUB_REPOSITORY", "acme").starts_with("--repo / GITHUB_REPOSITORY:"));
        assert!(with("GITHUB_RUN_ATTEMPT", "first").starts_with("GITHUB_RUN_ATTEMPT: expected"));
    }

    #[test]
    fn the_quarantine_list_needs_no_commit_and_keeps_a_path_prefix() {
        let argv = ["flakeguard", "quarantine", "export", "--format", "go"];
        let args = match Cli::try_parse_from(argv).unwrap().command {
            Command::Quarantine {
                command: crate::cli::QuarantineCommand::Export(args),
            } => args,
            other => panic!("parsed as {other:?}"),
        };
        let vars: HashMap<&str, &str> = [
            ("FLAKEGUARD_SERVER", "https://fg.example.com/fg/"),
            ("FLAKEGUARD_TOKEN", "fgt_x"),
            ("GITHUB_REPOSITORY", "acme/shop"),
        ]
        .into();
        let e = Endpoint::resolve(&args.server, |n| vars.get(n).map(|v| (*v).to_owned())).unwrap();
        assert_eq!(
            e.quarantine_url(2, 100).as_str(),
            "https://fg.example.com/fg/api/v1/repos/acme/shop/quarantine?page=2&per_page=100"
        );
        let err = Endpoint::resolve(&args.server, |_| None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "missing --server (or FLAKEGUARD_SERVER), --token (or FLAKEGUARD_TOKEN) and --repo (or GITHUB_REPOSITORY)"
        );
    }

    #[test]
    fn only_merge_refs_name_a_pull_request() {
        assert_eq!(pull_request_number("refs/pull/7/merge"), Some(7));
        assert_eq!(pull_request_number("refs/heads/pull/7/merge"), None);
        assert_eq!(pull_request_number("refs/pull/x/merge"), None);
    }
}
