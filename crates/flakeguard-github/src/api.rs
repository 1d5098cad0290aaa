//! The REST endpoints FlakeGuard calls, as methods on [`Installation`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;

use crate::client::decode;
use crate::types::{
    ArtifactList, CommentWire, ContentFile, PullNumber, SearchIssues, verify_limits,
};
use crate::{
    Artifact, CheckRunRef, CheckRunRequest, Comment, GitHubError, Installation, IssueRef, NewIssue,
};

const PER_PAGE: &str = "100";

fn json_body<T: serde::Serialize>(
    endpoint: &'static str,
    body: &T,
) -> Result<Vec<u8>, GitHubError> {
    serde_json::to_vec(body).map_err(|err| GitHubError::InvalidRequest {
        endpoint,
        message: format!("cannot encode the body: {err}"),
    })
}

impl Installation {
    /// Every artifact of a workflow run, following the pages.
    pub async fn list_run_artifacts(
        &self,
        owner: &str,
        repo: &str,
        run_id: i64,
    ) -> Result<Vec<Artifact>, GitHubError> {
        let run = run_id.to_string();
        let mut url = self
            .app()
            .url(&["repos", owner, repo, "actions", "runs", &run, "artifacts"]);
        url.query_pairs_mut().append_pair("per_page", PER_PAGE);
        self.get_all_pages("list_artifacts", url, |page: ArtifactList| page.artifacts)
            .await
    }

    /// Downloads an artifact's zip, following GitHub's redirect to the blob store (which does
    /// not get our token), and gives up with [`GitHubError::TooLarge`] as soon as more than
    /// `max_bytes` are announced or received.
    pub async fn download_artifact(
        &self,
        owner: &str,
        repo: &str,
        artifact_id: i64,
        max_bytes: u64,
    ) -> Result<Vec<u8>, GitHubError> {
        const ENDPOINT: &str = "download_artifact";
        let id = artifact_id.to_string();
        let url = self
            .app()
            .url(&["repos", owner, repo, "actions", "artifacts", &id, "zip"]);
        let mut response = self.send(ENDPOINT, Method::GET, url, None).await?;
        if response.content_length().is_some_and(|len| len > max_bytes) {
            return Err(GitHubError::TooLarge { limit: max_bytes });
        }
        let capacity = response.content_length().unwrap_or(0).min(max_bytes);
        let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        loop {
            let chunk = response.chunk().await.map_err(|err| {
                GitHubError::Transport(format!("{ENDPOINT}: reading the archive: {err}"))
            })?;
            let Some(chunk) = chunk else {
                return Ok(bytes);
            };
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Err(GitHubError::TooLarge { limit: max_bytes });
            }
            bytes.extend_from_slice(&chunk);
        }
    }

    /// Creates a check run; refuses bodies over GitHub's limits before sending them.
    pub async fn create_check_run(
        &self,
        owner: &str,
        repo: &str,
        body: &CheckRunRequest,
    ) -> Result<CheckRunRef, GitHubError> {
        const ENDPOINT: &str = "create_check_run";
        check_limits(ENDPOINT, body)?;
        if body.head_sha.is_none() {
            return Err(GitHubError::InvalidRequest {
                endpoint: ENDPOINT,
                message: "head_sha is required to create a check run".to_owned(),
            });
        }
        let url = self.app().url(&["repos", owner, repo, "check-runs"]);
        let body = json_body(ENDPOINT, body)?;
        let response = self.send(ENDPOINT, Method::POST, url, Some(body)).await?;
        decode(ENDPOINT, response).await
    }

    /// Updates a check run; refuses bodies over GitHub's limits before sending them.
    pub async fn update_check_run(
        &self,
        owner: &str,
        repo: &str,
        check_run_id: i64,
        body: &CheckRunRequest,
    ) -> Result<CheckRunRef, GitHubError> {
        const ENDPOINT: &str = "update_check_run";
        check_limits(ENDPOINT, body)?;
        let id = check_run_id.to_string();
        let url = self.app().url(&["repos", owner, repo, "check-runs", &id]);
        let body = json_body(ENDPOINT, body)?;
        let response = self.send(ENDPOINT, Method::PATCH, url, Some(body)).await?;
        decode(ENDPOINT, response).await
    }

    pub async fn create_issue(
        &self,
        owner: &str,
        repo: &str,
        issue: &NewIssue,
    ) -> Result<IssueRef, GitHubError> {
        const ENDPOINT: &str = "create_issue";
        let url = self.app().url(&["repos", owner, repo, "issues"]);
        let body = json_body(ENDPOINT, issue)?;
        let response = self.send(ENDPOINT, Method::POST, url, Some(body)).await?;
        decode(ENDPOINT, response).await
    }

    /// Issues and pull requests matching a search query (GitHub's search syntax, e.g.
    /// `"name" in:title label:flaky-test repo:owner/name is:issue`), all pages.
    pub async fn search_issues(&self, query: &str) -> Result<Vec<IssueRef>, GitHubError> {
        let mut url = self.app().url(&["search", "issues"]);
        url.query_pairs_mut()
            .append_pair("q", query)
            .append_pair("per_page", PER_PAGE);
        self.get_all_pages("search_issues", url, |page: SearchIssues| page.items)
            .await
    }

    /// Every comment of an issue or pull request, following the pages.
    pub async fn list_issue_comments(
        &self,
        owner: &str,
        repo: &str,
        number: i64,
    ) -> Result<Vec<Comment>, GitHubError> {
        let number = number.to_string();
        let mut url = self
            .app()
            .url(&["repos", owner, repo, "issues", &number, "comments"]);
        url.query_pairs_mut().append_pair("per_page", PER_PAGE);
        self.get_all_pages("list_issue_comments", url, |page: Vec<CommentWire>| {
            page.into_iter().map(Comment::from).collect()
        })
        .await
    }

    pub async fn create_issue_comment(
        &self,
        owner: &str,
        repo: &str,
        number: i64,
        body: &str,
    ) -> Result<Comment, GitHubError> {
        const ENDPOINT: &str = "create_issue_comment";
        let number = number.to_string();
        let url = self
            .app()
            .url(&["repos", owner, repo, "issues", &number, "comments"]);
        let body = json_body(ENDPOINT, &serde_json::json!({ "body": body }))?;
        let response = self.send(ENDPOINT, Method::POST, url, Some(body)).await?;
        Ok(decode::<CommentWire>(ENDPOINT, response).await?.into())
    }

    pub async fn update_issue_comment(
        &self,
        owner: &str,
        repo: &str,
        comment_id: i64,
        body: &str,
    ) -> Result<Comment, GitHubError> {
        const ENDPOINT: &str = "update_issue_comment";
        let id = comment_id.to_string();
        let url = self
            .app()
            .url(&["repos", owner, repo, "issues", "comments", &id]);
        let body = json_body(ENDPOINT, &serde_json::json!({ "body": body }))?;
        let response = self.send(ENDPOINT, Method::PATCH, url, Some(body)).await?;
        Ok(decode::<CommentWire>(ENDPOINT, response).await?.into())
    }

    /// Re-runs the failed jobs of a workflow run (GitHub answers 201 with an empty body).
    pub async fn rerun_failed_jobs(
        &self,
        owner: &str,
        repo: &str,
        run_id: i64,
    ) -> Result<(), GitHubError> {
        let run = run_id.to_string();
        let url = self.app().url(&[
            "repos",
            owner,
            repo,
            "actions",
            "runs",
            &run,
            "rerun-failed-jobs",
        ]);
        self.send("rerun_failed_jobs", Method::POST, url, None)
            .await
            .map(drop)
    }

    /// A text file at `git_ref` through the contents API; `None` when there is no such file.
    pub async fn get_file(
        &self,
        owner: &str,
        repo: &str,
        path: &str,
        git_ref: &str,
    ) -> Result<Option<String>, GitHubError> {
        const ENDPOINT: &str = "get_file";
        let mut segments = vec!["repos", owner, repo, "contents"];
        segments.extend(path.split('/').filter(|segment| !segment.is_empty()));
        let mut url = self.app().url(&segments);
        url.query_pairs_mut().append_pair("ref", git_ref);
        let response = match self.send(ENDPOINT, Method::GET, url, None).await {
            Ok(response) => response,
            Err(GitHubError::Http { status: 404, .. }) => return Ok(None),
            Err(err) => return Err(err),
        };
        let value: serde_json::Value = decode(ENDPOINT, response).await?;
        if value.is_array() {
            return Err(decode_error(ENDPOINT, format!("{path} is a directory")));
        }
        let file: ContentFile = serde_json::from_value(value)
            .map_err(|err| decode_error(ENDPOINT, format!("{path}: {err}")))?;
        if file.kind != "file" {
            return Err(decode_error(ENDPOINT, format!("{path} is a {}", file.kind)));
        }
        if file.encoding.as_deref() != Some("base64") {
            return Err(decode_error(
                ENDPOINT,
                format!(
                    "{path}: content encoding {:?} (files over 1 MB are not served inline)",
                    file.encoding
                ),
            ));
        }
        let encoded: Vec<u8> = file
            .content
            .unwrap_or_default()
            .bytes()
            .filter(|byte| !byte.is_ascii_whitespace())
            .collect();
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|err| decode_error(ENDPOINT, format!("{path}: bad base64 content: {err}")))?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| decode_error(ENDPOINT, format!("{path} is not UTF-8 text")))
    }

    /// Numbers of the pull requests a commit belongs to.
    pub async fn pulls_for_commit(
        &self,
        owner: &str,
        repo: &str,
        sha: &str,
    ) -> Result<Vec<i64>, GitHubError> {
        let mut url = self
            .app()
            .url(&["repos", owner, repo, "commits", sha, "pulls"]);
        url.query_pairs_mut().append_pair("per_page", PER_PAGE);
        self.get_all_pages("pulls_for_commit", url, |page: Vec<PullNumber>| {
            page.into_iter().map(|pull| pull.number).collect()
        })
        .await
    }
}

fn check_limits(endpoint: &'static str, body: &CheckRunRequest) -> Result<(), GitHubError> {
    verify_limits(body).map_err(|message| GitHubError::InvalidRequest { endpoint, message })
}

fn decode_error(endpoint: &'static str, message: String) -> GitHubError {
    GitHubError::Decode { endpoint, message }
}
