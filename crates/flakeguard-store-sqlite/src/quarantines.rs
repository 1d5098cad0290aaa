//! Quarantines: recorded for a test of the repository, at most one live (proposed or active)
//! per test — the partial unique index `quarantines_live` decides, so two concurrent requests
//! cannot both win — the repository's live ones listed with their tests, released on request
//! or by policy, and the expired ones ended by the maintenance job (found through the partial
//! index `quarantines_expiring`).

use flakeguard_core::TestKey;
use flakeguard_store::{
    NewQuarantine, Quarantine, QuarantineId, QuarantineState, RepoId, Result, StoreError,
    TestCaseId,
};
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::error::{corrupt, map};
use crate::timestamp::{from_micros, from_micros_opt, to_micros};

type QuarantineRow = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

/// The columns [`quarantine`] reads, each prefixed with `$q` (`""` or `"q."`), as a literal
/// for `concat!`.
macro_rules! quarantine_columns {
    ($q:literal) => {
        concat!(
            $q,
            "id, ",
            $q,
            "test_case_id, ",
            $q,
            "state, ",
            $q,
            "reason, ",
            $q,
            "owner, ",
            $q,
            "created_by, ",
            $q,
            "created_at, ",
            $q,
            "expires_at, ",
            $q,
            "released_at, ",
            $q,
            "released_by"
        )
    };
}

/// A quarantine and its test's repository.
type ExpiredRow = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
);

/// A quarantine and its test's key.
type LiveRow = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
);

fn quarantine(row: QuarantineRow) -> Result<Quarantine> {
    let (
        id,
        test,
        state,
        reason,
        owner,
        created_by,
        created_at,
        expires_at,
        released_at,
        released_by,
    ) = row;
    Ok(Quarantine {
        id: QuarantineId(id),
        test: TestCaseId(test),
        state: QuarantineState::parse(&state)
            .ok_or_else(|| corrupt(format_args!("quarantine state {state:?}")))?,
        reason,
        owner,
        created_by,
        created_at: from_micros(created_at)?,
        expires_at: from_micros_opt(expires_at)?,
        released_at: from_micros_opt(released_at)?,
        released_by,
    })
}

impl SqliteStore {
    pub(crate) async fn add_quarantine_impl(
        &self,
        repo: RepoId,
        new: &NewQuarantine,
    ) -> Result<Quarantine> {
        // Inserts nothing when the test is not one of the repository's.
        let row: Option<QuarantineRow> = sqlx::query_as(concat!(
            "INSERT INTO quarantines (test_case_id, state, reason, owner, created_by,
                                      created_at, expires_at)
             SELECT id, ?, ?, ?, ?, ?, ? FROM test_cases WHERE id = ? AND repo_id = ?
             RETURNING ",
            quarantine_columns!("")
        ))
        .bind(new.state.as_str())
        .bind(&new.reason)
        .bind(new.owner.as_deref())
        .bind(&new.created_by)
        .bind(to_micros(new.created_at))
        .bind(new.expires_at.map(to_micros))
        .bind(new.test.0)
        .bind(repo.0)
        .fetch_optional(&self.writer)
        .await
        .map_err(|e| match map("add the quarantine")(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "test {} already has a proposed or active quarantine",
                new.test
            )),
            other => other,
        })?;
        match row {
            Some(row) => quarantine(row),
            None => Err(StoreError::NotFound(format!("test {}", new.test))),
        }
    }

    pub(crate) async fn release_quarantine_impl(
        &self,
        repo: RepoId,
        test: TestCaseId,
        at: OffsetDateTime,
        by: &str,
    ) -> Result<Option<Quarantine>> {
        // One statement: of concurrent releases, one changes the row and the others find it
        // no longer live.
        let row: Option<QuarantineRow> = sqlx::query_as(concat!(
            "UPDATE quarantines SET state = 'released', released_at = ?, released_by = ?
             WHERE test_case_id = ? AND state IN ('proposed', 'active')
               AND test_case_id IN (SELECT id FROM test_cases WHERE repo_id = ?)
             RETURNING ",
            quarantine_columns!("")
        ))
        .bind(to_micros(at))
        .bind(by)
        .bind(test.0)
        .bind(repo.0)
        .fetch_optional(&self.writer)
        .await
        .map_err(map("release the quarantine"))?;
        row.map(quarantine).transpose()
    }

    pub(crate) async fn expire_quarantines_impl(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(Quarantine, RepoId)>> {
        // One statement: a quarantine is ended once, whoever else expires them meanwhile.
        // (RETURNING may not name another table, but a subquery may.)
        let rows: Vec<ExpiredRow> = sqlx::query_as(concat!(
            "UPDATE quarantines SET state = 'expired', released_at = ?1
             WHERE state IN ('proposed', 'active') AND expires_at <= ?1
             RETURNING ",
            quarantine_columns!(""),
            ", (SELECT t.repo_id FROM test_cases t WHERE t.id = quarantines.test_case_id)"
        ))
        .bind(to_micros(now))
        .fetch_all(&self.writer)
        .await
        .map_err(map("expire the quarantines"))?;
        let mut expired = rows
            .into_iter()
            .map(
                |(id, test, state, reason, owner, by, at, expires, released, released_by, repo)| {
                    let quarantine = quarantine((
                        id,
                        test,
                        state,
                        reason,
                        owner,
                        by,
                        at,
                        expires,
                        released,
                        released_by,
                    ))?;
                    Ok((quarantine, RepoId(repo)))
                },
            )
            .collect::<Result<Vec<_>>>()?;
        expired.sort_unstable_by_key(|(q, _)| q.id);
        Ok(expired)
    }

    pub(crate) async fn live_quarantines_impl(
        &self,
        repo: RepoId,
    ) -> Result<Vec<(Quarantine, TestKey)>> {
        let rows: Vec<LiveRow> = sqlx::query_as(concat!(
            "SELECT ",
            quarantine_columns!("q."),
            ", t.scope, t.classname, t.name, t.variant
             FROM quarantines q JOIN test_cases t ON t.id = q.test_case_id
             WHERE t.repo_id = ? AND q.state IN ('proposed', 'active')
             ORDER BY q.created_at, q.id"
        ))
        .bind(repo.0)
        .fetch_all(&self.reader)
        .await
        .map_err(map("list the quarantines"))?;
        rows.into_iter()
            .map(
                |(
                    id,
                    test,
                    state,
                    reason,
                    owner,
                    by,
                    at,
                    expires,
                    released,
                    released_by,
                    scope,
                    classname,
                    name,
                    variant,
                )| {
                    let quarantine = quarantine((
                        id,
                        test,
                        state,
                        reason,
                        owner,
                        by,
                        at,
                        expires,
                        released,
                        released_by,
                    ))?;
                    let key = TestKey {
                        scope,
                        classname,
                        name,
                        variant,
                    };
                    Ok((quarantine, key))
                },
            )
            .collect()
    }
}
