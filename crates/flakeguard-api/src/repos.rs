//! The read API: repositories, their tests (filtered, sorted, searched), a test's executions,
//! evidence and failure signatures, and runs. Tokens need the `read` scope; anything outside
//! the caller's organization (or its one repository) is 404, never 403, so names can't be
//! probed.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::routing::get;
use flakeguard_core::signature_hex;
use flakeguard_store::{
    Page, PageRequest, RepoSlug, Repository, Scope, StoredRun, StoredRunId, StoredTest, TestCaseId,
    TestFilter, TestQuery, TestSort,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::pagination::{ApiQuery, PageParams, Paged};

/// Recent executions shown with a test.
const RECENT_EXECUTIONS: u32 = 50;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/repos", get(list_repos))
        .route("/api/v1/repos/{owner}/{repo}", get(get_repo))
        .route("/api/v1/repos/{owner}/{repo}/tests", get(list_tests))
        .route(
            "/api/v1/repos/{owner}/{repo}/tests/{test_id}",
            get(get_test),
        )
        .route("/api/v1/repos/{owner}/{repo}/runs", get(list_runs))
        .route("/api/v1/repos/{owner}/{repo}/runs/{run_id}", get(get_run))
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The repository if the caller may see it; otherwise the same 404 as for one that does not
/// exist.
pub(crate) fn find_visible_repo(
    principal: &Principal,
    repo: Option<Repository>,
    slug: &RepoSlug,
) -> Result<Repository, ApiError> {
    match repo {
        Some(r) if principal.sees(&r) => Ok(r),
        _ => Err(ApiError::not_found(format!("repository {slug} not found"))),
    }
}

pub(crate) async fn readable_repo(
    state: &AppState,
    principal: &Principal,
    owner: &str,
    name: &str,
) -> Result<Repository, ApiError> {
    let slug = RepoSlug::parse(&format!("{owner}/{name}"))
        .map_err(|_| ApiError::not_found(format!("repository {owner}/{name} not found")))?;
    let repo = state.store().find_repository(&slug).await?;
    let repo = find_visible_repo(principal, repo, &slug)?;
    principal.require(Scope::Read)?;
    Ok(repo)
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RepoBody {
    id: i64,
    owner: String,
    name: String,
    full_name: String,
    default_branch: String,
    created_at: String,
}

impl From<&Repository> for RepoBody {
    fn from(r: &Repository) -> Self {
        RepoBody {
            id: r.id.0,
            owner: r.slug.owner().to_owned(),
            name: r.slug.name().to_owned(),
            full_name: r.slug.to_string(),
            default_branch: r.default_branch.clone(),
            created_at: rfc3339(r.created_at),
        }
    }
}

/// The repositories the caller can see.
#[utoipa::path(get, path = "/api/v1/repos", tag = "repositories", params(PageParams),
    responses((status = 200, description = "A page of repositories (Link and X-Total-Count headers)", body = Paged<RepoBody>),
              (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_repos(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<PageParams>,
    uri: Uri,
) -> Result<Paged<RepoBody>, ApiError> {
    principal.require(Scope::Read)?;
    let (page, per_page, request) = params.request()?;
    let repos = match &principal {
        Principal::Operator => state.store().list_all_repositories().await?,
        Principal::Token { org, .. } => state.store().list_repositories(*org).await?,
    };
    let visible: Vec<&Repository> = repos.iter().filter(|r| principal.sees(r)).collect();
    let total = visible.len() as u64;
    let items = visible
        .into_iter()
        .skip(request.offset as usize)
        .take(request.limit as usize)
        .map(RepoBody::from)
        .collect();
    Ok(Paged::new(items, page, per_page, total, &uri))
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RepoDetail {
    #[serde(flatten)]
    repo: RepoBody,
    tests: TestCounts,
    latest_run: Option<RunBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TestCounts {
    total: u64,
    flaky: u64,
    broken: u64,
    stable: u64,
    quarantined: u64,
}

/// One repository with its test counts and latest run.
#[utoipa::path(get, path = "/api/v1/repos/{owner}/{repo}", tag = "repositories",
    params(("owner" = String, Path), ("repo" = String, Path)),
    responses((status = 200, body = RepoDetail), (status = 404, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_repo(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Json<RepoDetail>, ApiError> {
    let repo = readable_repo(&state, &principal, &owner, &name).await?;
    let store = state.store();
    let count = async |filter| -> Result<u64, ApiError> {
        let query = TestQuery {
            filter,
            text: None,
            sort: TestSort::Name,
            page: PageRequest {
                offset: 0,
                limit: 0,
            },
        };
        Ok(store.list_tests(repo.id, &query).await?.total)
    };
    let tests = TestCounts {
        total: count(None).await?,
        flaky: count(Some(TestFilter::Flaky)).await?,
        broken: count(Some(TestFilter::Broken)).await?,
        stable: count(Some(TestFilter::Stable)).await?,
        quarantined: count(Some(TestFilter::Quarantined)).await?,
    };
    let latest = store
        .list_runs(
            repo.id,
            PageRequest {
                offset: 0,
                limit: 1,
            },
        )
        .await?;
    Ok(Json(RepoDetail {
        repo: RepoBody::from(&repo),
        tests,
        latest_run: latest.items.first().map(RunBody::from),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TestParams {
    /// `flaky`, `broken`, `stable` or `quarantined`.
    status: Option<String>,
    /// `probability` (default), `impact` (failures in the window) or `name`.
    sort: Option<String>,
    /// Case-insensitive text in the class name, test name or file.
    q: Option<String>,
    page: Option<u64>,
    per_page: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TestBody {
    id: i64,
    /// The test's identity as one string.
    key: String,
    scope: String,
    classname: String,
    name: String,
    variant: Option<String>,
    file: Option<String>,
    /// `flaky`, `broken`, `stable` or `insufficient_data`.
    status: String,
    /// Posterior probability that the test is flaky.
    probability: f64,
    confidence: f64,
    legacy_score: f64,
    recommendation: String,
    /// Non-skipped executions in the scoring window.
    executions: u32,
    /// Failed executions in the scoring window.
    failures: u32,
    quarantined: bool,
    reason: String,
    first_seen_at: String,
    last_seen_at: String,
    scored_at: Option<String>,
}

impl From<&StoredTest> for TestBody {
    fn from(t: &StoredTest) -> Self {
        TestBody {
            id: t.id.0,
            key: t.key.to_string(),
            scope: t.key.scope.clone(),
            classname: t.key.classname.clone(),
            name: t.key.name.clone(),
            variant: t.key.variant.clone(),
            file: t.file.clone(),
            status: t.status.clone(),
            probability: t.probability,
            confidence: t.confidence,
            legacy_score: t.legacy_score,
            recommendation: t.recommendation.clone(),
            executions: t.executions,
            failures: t.failures,
            quarantined: t.quarantined,
            reason: t.reason.clone(),
            first_seen_at: rfc3339(t.first_seen_at),
            last_seen_at: rfc3339(t.last_seen_at),
            scored_at: t.scored_at.map(rfc3339),
        }
    }
}

/// The repository's tests.
#[utoipa::path(get, path = "/api/v1/repos/{owner}/{repo}/tests", tag = "tests",
    params(("owner" = String, Path), ("repo" = String, Path), TestParams),
    responses((status = 200, description = "A page of tests (Link and X-Total-Count headers)", body = Paged<TestBody>),
              (status = 404, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_tests(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
    ApiQuery(params): ApiQuery<TestParams>,
    uri: Uri,
) -> Result<Paged<TestBody>, ApiError> {
    let repo = readable_repo(&state, &principal, &owner, &name).await?;
    let filter = match params.status.as_deref() {
        None | Some("") => None,
        Some("flaky") => Some(TestFilter::Flaky),
        Some("broken") => Some(TestFilter::Broken),
        Some("stable") => Some(TestFilter::Stable),
        Some("quarantined") => Some(TestFilter::Quarantined),
        Some(other) => {
            return Err(ApiError::invalid(
                "invalid_query",
                format!("status={other:?}: expected flaky, broken, stable or quarantined"),
            ));
        }
    };
    let sort = match params.sort.as_deref() {
        None | Some("") | Some("probability") => TestSort::Probability,
        Some("impact") => TestSort::Impact,
        Some("name") => TestSort::Name,
        Some(other) => {
            return Err(ApiError::invalid(
                "invalid_query",
                format!("sort={other:?}: expected probability, impact or name"),
            ));
        }
    };
    let text = params.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if text.is_some_and(|q| q.len() > 200) {
        return Err(ApiError::invalid(
            "invalid_query",
            "q: at most 200 characters",
        ));
    }
    let (page, per_page, request) = PageParams {
        page: params.page,
        per_page: params.per_page,
    }
    .request()?;
    let Page { items, total } = state
        .store()
        .list_tests(
            repo.id,
            &TestQuery {
                filter,
                text: text.map(str::to_owned),
                sort,
                page: request,
            },
        )
        .await?;
    let items = items.iter().map(TestBody::from).collect();
    Ok(Paged::new(items, page, per_page, total, &uri))
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TestDetail {
    #[serde(flatten)]
    test: TestBody,
    /// Why the scoring engine judged as it did: `[{"kind":…,"runs":[run ids]}]`.
    #[schema(value_type = Object)]
    evidence: Value,
    /// The most recent executions, newest first.
    recent_executions: Vec<ExecutionBody>,
    /// Distinct failure signatures, most frequent first.
    signatures: Vec<SignatureBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExecutionBody {
    run_id: i64,
    workflow_run_id: String,
    run_attempt: u32,
    job: String,
    commit: Option<String>,
    branch: Option<String>,
    started_at: String,
    attempt: u32,
    /// `passed`, `failed`, `error` or `skipped`.
    outcome: &'static str,
    duration_ms: Option<u64>,
    signature: Option<String>,
    message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SignatureBody {
    signature: String,
    count: u64,
    last_seen_at: String,
    message: Option<String>,
}

/// One test with its evidence, recent executions and failure signatures.
#[utoipa::path(get, path = "/api/v1/repos/{owner}/{repo}/tests/{test_id}", tag = "tests",
    params(("owner" = String, Path), ("repo" = String, Path), ("test_id" = i64, Path)),
    responses((status = 200, body = TestDetail), (status = 404, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_test(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name, test_id)): Path<(String, String, String)>,
) -> Result<Json<TestDetail>, ApiError> {
    let repo = readable_repo(&state, &principal, &owner, &name).await?;
    let not_found = || ApiError::not_found(format!("test {test_id} not found in {}", repo.slug));
    let id = TestCaseId(test_id.parse().map_err(|_| not_found())?);
    let store = state.store();
    let test = store.find_test(repo.id, id).await?.ok_or_else(not_found)?;
    let executions = store
        .recent_executions(repo.id, id, RECENT_EXECUTIONS)
        .await?;
    let signatures = store.failure_signatures(repo.id, id).await?;
    Ok(Json(TestDetail {
        evidence: serde_json::from_str(&test.evidence).unwrap_or(Value::Array(Vec::new())),
        test: TestBody::from(&test),
        recent_executions: executions
            .into_iter()
            .map(|e| ExecutionBody {
                run_id: e.run.0,
                workflow_run_id: e.workflow_run_id,
                run_attempt: e.run_attempt,
                job: e.job,
                commit: e.commit,
                branch: e.branch,
                started_at: rfc3339(e.started_at),
                attempt: e.attempt,
                outcome: e.outcome.as_str(),
                duration_ms: e.duration_ms,
                signature: e.signature.map(signature_hex),
                message: e.message,
            })
            .collect(),
        signatures: signatures
            .into_iter()
            .map(|s| SignatureBody {
                signature: signature_hex(s.signature),
                count: s.count,
                last_seen_at: rfc3339(s.last_seen_at),
                message: s.message,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunBody {
    id: i64,
    workflow_run_id: String,
    attempt: u32,
    job: String,
    commit: Option<String>,
    branch: Option<String>,
    pr_number: Option<i64>,
    /// `upload`, `github_artifact`, `cli` or `demo`.
    source: &'static str,
    started_at: String,
    received_at: String,
    report_digest: String,
    testcases: u64,
    executions: u64,
    failed: u64,
}

impl From<&StoredRun> for RunBody {
    fn from(r: &StoredRun) -> Self {
        RunBody {
            id: r.id.0,
            workflow_run_id: r.workflow_run_id.clone(),
            attempt: r.attempt,
            job: r.job.clone(),
            commit: r.commit.clone(),
            branch: r.branch.clone(),
            pr_number: r.pr_number,
            source: r.source.as_str(),
            started_at: rfc3339(r.started_at),
            received_at: rfc3339(r.received_at),
            report_digest: r.report_digest.clone(),
            testcases: r.testcases,
            executions: r.executions,
            failed: r.failed,
        }
    }
}

/// The repository's runs, most recent first.
#[utoipa::path(get, path = "/api/v1/repos/{owner}/{repo}/runs", tag = "runs",
    params(("owner" = String, Path), ("repo" = String, Path), PageParams),
    responses((status = 200, description = "A page of runs (Link and X-Total-Count headers)", body = Paged<RunBody>),
              (status = 404, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_runs(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
    ApiQuery(params): ApiQuery<PageParams>,
    uri: Uri,
) -> Result<Paged<RunBody>, ApiError> {
    let repo = readable_repo(&state, &principal, &owner, &name).await?;
    let (page, per_page, request) = params.request()?;
    let Page { items, total } = state.store().list_runs(repo.id, request).await?;
    let items = items.iter().map(RunBody::from).collect();
    Ok(Paged::new(items, page, per_page, total, &uri))
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunDetail {
    #[serde(flatten)]
    run: RunBody,
    /// Failed and errored executions, by test name.
    failures: Vec<RunFailureBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunFailureBody {
    test_id: i64,
    key: String,
    attempt: u32,
    outcome: &'static str,
    duration_ms: Option<u64>,
    signature: Option<String>,
    message: Option<String>,
}

/// One run with its failures.
#[utoipa::path(get, path = "/api/v1/repos/{owner}/{repo}/runs/{run_id}", tag = "runs",
    params(("owner" = String, Path), ("repo" = String, Path), ("run_id" = i64, Path)),
    responses((status = 200, body = RunDetail), (status = 404, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_run(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name, run_id)): Path<(String, String, String)>,
) -> Result<Json<RunDetail>, ApiError> {
    let repo = readable_repo(&state, &principal, &owner, &name).await?;
    let not_found = || ApiError::not_found(format!("run {run_id} not found in {}", repo.slug));
    let id = StoredRunId(run_id.parse().map_err(|_| not_found())?);
    let store = state.store();
    let run = store.find_run(repo.id, id).await?.ok_or_else(not_found)?;
    let failures = store.run_failures(repo.id, id).await?;
    Ok(Json(RunDetail {
        run: RunBody::from(&run),
        failures: failures
            .into_iter()
            .map(|f| RunFailureBody {
                test_id: f.test.0,
                key: f.key.to_string(),
                attempt: f.attempt,
                outcome: f.outcome.as_str(),
                duration_ms: f.duration_ms,
                signature: f.signature.map(signature_hex),
                message: f.message,
            })
            .collect(),
    }))
}
