//! The Redis backend: every state change is one Lua script, so it is atomic however many
//! workers share the queues, and every timestamp is the Redis server's clock (`TIME`), so the
//! workers' clocks never have to agree.
//!
//! Keys (all under one hash tag, so they live in one slot should the server be a cluster):
//!
//! - `{prefix}:job:<id>` — a hash: queue, payload, attempts, max, state, error, token,
//!   created, updated (milliseconds).
//! - `{prefix}:q:<queue>:pending` — sorted set of ids by enqueue time (FIFO).
//! - `{prefix}:q:<queue>:running` — by lease deadline.
//! - `{prefix}:q:<queue>:retry` — by the time the retry is due.
//! - `{prefix}:q:<queue>:dead` — by the time the job died.
//! - `{prefix}:schedule:<name>:<slot>` — a claimed schedule slot, with an expiry.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script, Value};
use tokio::sync::OnceCell;

use crate::{
    JobInfo, JobQueue, JobState, Lease, NewJob, Pushed, QueueError, QueueStats, Result, millis,
    new_token,
};

/// How long one command may take before the queue counts as unavailable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Expired leases and due retries moved per queue per reservation (bounds the script's run).
const MOVE_BATCH: u32 = 100;

/// A queue on a Redis server. Clones share one multiplexed connection, which reconnects by
/// itself after Redis comes back; it is opened on first use, so a process can start while
/// Redis is away.
#[derive(Clone)]
pub struct RedisQueue {
    client: redis::Client,
    connection: Arc<OnceCell<ConnectionManager>>,
    prefix: String,
    url: String,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("url", &redact(&self.url))
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// The URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl RedisQueue {
    /// Connects to `url` (`redis://…` or `rediss://…`) with keys under `prefix` (FlakeGuard
    /// uses `flakeguard`; tests use one prefix each). Fails when Redis does not answer.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisQueue> {
        let queue = RedisQueue::lazy(url, prefix)?;
        queue.ping().await?;
        Ok(queue)
    }

    /// Checks the URL only; the connection is made on first use (and retried on every use
    /// until it succeeds).
    pub fn lazy(url: &str, prefix: &str) -> Result<RedisQueue> {
        let client = redis::Client::open(url)
            .map_err(|e| QueueError::Invalid(format!("REDIS_URL {}: {e}", redact(url))))?;
        Ok(RedisQueue {
            client,
            connection: Arc::new(OnceCell::new()),
            prefix: format!("{{{prefix}}}"),
            url: url.to_owned(),
        })
    }

    /// The shared connection, opened now if it never was.
    async fn connection(&self) -> Result<ConnectionManager> {
        let open = async {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(COMMAND_TIMEOUT))
                .set_response_timeout(Some(COMMAND_TIMEOUT))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(2));
            match tokio::time::timeout(
                COMMAND_TIMEOUT,
                ConnectionManager::new_with_config(self.client.clone(), config),
            )
            .await
            {
                Ok(result) => result.map_err(|e| unavailable(&self.url, &e.to_string())),
                Err(_) => Err(unavailable(&self.url, "no answer within 2 s")),
            }
        };
        self.connection.get_or_try_init(|| open).await.cloned()
    }

    fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    fn queue_key(&self, queue: &str, set: &str) -> String {
        format!("{}:q:{queue}:{set}", self.prefix)
    }

    fn error(&self, e: redis::RedisError) -> QueueError {
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
        {
            unavailable(&self.url, &e.to_string())
        } else {
            QueueError::Backend(format!("redis: {e}"))
        }
    }

    /// Runs a script with a deadline.
    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T> {
        let mut connection = self.connection().await?;
        match tokio::time::timeout(COMMAND_TIMEOUT, invocation.invoke_async(&mut connection)).await
        {
            Ok(result) => result.map_err(|e| self.error(e)),
            Err(_) => Err(unavailable(&self.url, "no answer within 2 s")),
        }
    }

    async fn lease_call(&self, script: &Script, lease: &Lease, extra: &[String]) -> Result<bool> {
        let mut invocation = script.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(&lease.queue)
            .arg(&lease.id)
            .arg(&lease.token);
        for arg in extra {
            invocation.arg(arg);
        }
        let changed: i64 = self.run(invocation).await?;
        Ok(changed == 1)
    }
}

fn unavailable(url: &str, why: &str) -> QueueError {
    QueueError::Unavailable(format!("redis at {}: {why}", redact(url)))
}

/// Shared Lua: the server's time in milliseconds.
const NOW: &str = "local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n";

static PUSH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}
local prefix, queue, id, payload, max = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local job = prefix .. ':job:' .. id
if redis.call('EXISTS', job) == 1 then return 0 end
redis.call('HSET', job, 'queue', queue, 'payload', payload, 'attempts', 0, 'max', max,
  'state', 'pending', 'created', now, 'updated', now)
redis.call('ZADD', prefix .. ':q:' .. queue .. ':pending', now, id)
return 1"
    ))
});

static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}
local prefix, lease, token, batch = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
for i = 5, #ARGV do
  local q = prefix .. ':q:' .. ARGV[i]
  local pending, running, retry, dead = q .. ':pending', q .. ':running', q .. ':retry', q .. ':dead'
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', retry, '-inf', now, 'LIMIT', 0, batch)) do
    redis.call('ZREM', retry, id)
    redis.call('ZADD', pending, now, id)
    redis.call('HSET', prefix .. ':job:' .. id, 'state', 'pending', 'updated', now)
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', running, '-inf', now, 'LIMIT', 0, batch)) do
    local job = prefix .. ':job:' .. id
    redis.call('ZREM', running, id)
    local attempts = tonumber(redis.call('HGET', job, 'attempts') or '0')
    local max = tonumber(redis.call('HGET', job, 'max') or '1')
    local why = 'lease expired during attempt ' .. attempts .. ' (worker stopped or stalled)'
    if attempts >= max then
      redis.call('ZADD', dead, now, id)
      redis.call('HSET', job, 'state', 'dead', 'error', why, 'token', '', 'updated', now)
    else
      redis.call('ZADD', pending, now, id)
      redis.call('HSET', job, 'state', 'pending', 'error', why, 'token', '', 'updated', now)
    end
  end
  while true do
    local first = redis.call('ZRANGE', pending, 0, 0)
    if #first == 0 then break end
    local id = first[1]
    redis.call('ZREM', pending, id)
    local job = prefix .. ':job:' .. id
    if redis.call('EXISTS', job) == 1 then
      local attempts = redis.call('HINCRBY', job, 'attempts', 1)
      redis.call('HSET', job, 'state', 'running', 'token', token, 'updated', now)
      redis.call('ZADD', running, now + lease, id)
      local fields = redis.call('HMGET', job, 'payload', 'max')
      return {{ARGV[i], id, fields[1], attempts, tonumber(fields[2])}}
    end
  end
end
return false"
    ))
});

/// Lease scripts share their first arguments: prefix, queue, id, token.
const LEASED: &str = "local prefix, queue, id, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local job = prefix .. ':job:' .. id
local q = prefix .. ':q:' .. queue
if token == '' or redis.call('HGET', job, 'token') ~= token or redis.call('HGET', job, 'state') ~= 'running' then return 0 end
";

static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}{LEASED}
redis.call('ZADD', q .. ':running', 'XX', now + tonumber(ARGV[5]), id)
return 1"
    ))
});

static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}{LEASED}
redis.call('ZREM', q .. ':running', id)
redis.call('DEL', job)
return 1"
    ))
});

static FAIL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}{LEASED}
local err, retry_ms = ARGV[5], tonumber(ARGV[6])
redis.call('ZREM', q .. ':running', id)
if retry_ms < 0 then
  redis.call('ZADD', q .. ':dead', now, id)
  redis.call('HSET', job, 'state', 'dead', 'error', err, 'token', '', 'updated', now)
else
  redis.call('ZADD', q .. ':retry', now + retry_ms, id)
  redis.call('HSET', job, 'state', 'retrying', 'error', err, 'token', '', 'updated', now)
end
return 1"
    ))
});

static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}{LEASED}
redis.call('ZREM', q .. ':running', id)
redis.call('HINCRBY', job, 'attempts', -1)
redis.call('ZADD', q .. ':pending', now, id)
redis.call('HSET', job, 'state', 'pending', 'token', '', 'updated', now)
return 1"
    ))
});

static RETRY_DEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}
local prefix, queue, only = ARGV[1], ARGV[2], ARGV[3]
local q = prefix .. ':q:' .. queue
local ids
if only == '' then ids = redis.call('ZRANGE', q .. ':dead', 0, -1)
elseif redis.call('ZSCORE', q .. ':dead', only) then ids = {{only}}
else ids = {{}} end
for _, id in ipairs(ids) do
  redis.call('ZREM', q .. ':dead', id)
  redis.call('ZADD', q .. ':pending', now, id)
  redis.call('HSET', prefix .. ':job:' .. id, 'state', 'pending', 'attempts', 0, 'updated', now)
end
return #ids"
    ))
});

static PURGE_DEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local prefix, queue, only = ARGV[1], ARGV[2], ARGV[3]
local q = prefix .. ':q:' .. queue
local ids
if only == '' then ids = redis.call('ZRANGE', q .. ':dead', 0, -1)
elseif redis.call('ZSCORE', q .. ':dead', only) then ids = {only}
else ids = {} end
for _, id in ipairs(ids) do
  redis.call('ZREM', q .. ':dead', id)
  redis.call('DEL', prefix .. ':job:' .. id)
end
return #ids",
    )
});

#[async_trait]
impl JobQueue for RedisQueue {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<()> {
        let mut connection = self.connection().await?;
        let pong: redis::RedisResult<String> = match tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("PING").query_async(&mut connection),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => return Err(unavailable(&self.url, "no answer within 2 s")),
        };
        pong.map(|_| ()).map_err(|e| self.error(e))
    }

    async fn push(&self, job: &NewJob) -> Result<Pushed> {
        job.check()?;
        let mut invocation = PUSH.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(&job.queue)
            .arg(&job.id)
            .arg(&job.payload)
            .arg(job.max_attempts);
        let added: i64 = self.run(invocation).await?;
        Ok(if added == 1 {
            Pushed::Queued
        } else {
            Pushed::AlreadyQueued
        })
    }

    async fn reserve(&self, queues: &[&str], lease: Duration) -> Result<Option<Lease>> {
        if queues.is_empty() {
            return Ok(None);
        }
        let token = new_token();
        let mut invocation = RESERVE.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(millis(lease).max(1))
            .arg(&token)
            .arg(MOVE_BATCH);
        for queue in queues {
            invocation.arg(*queue);
        }
        let reply: Option<(String, String, String, u32, u32)> = self.run(invocation).await?;
        Ok(
            reply.map(|(queue, id, payload, attempt, max_attempts)| Lease {
                queue,
                id,
                payload,
                attempt,
                max_attempts,
                token,
            }),
        )
    }

    async fn extend(&self, lease: &Lease, by: Duration) -> Result<bool> {
        self.lease_call(&EXTEND, lease, &[millis(by).max(1).to_string()])
            .await
    }

    async fn complete(&self, lease: &Lease) -> Result<bool> {
        self.lease_call(&COMPLETE, lease, &[]).await
    }

    async fn fail(&self, lease: &Lease, error: &str, retry_in: Option<Duration>) -> Result<bool> {
        let retry = retry_in.map(millis).unwrap_or(-1);
        self.lease_call(&FAIL, lease, &[error.to_owned(), retry.to_string()])
            .await
    }

    async fn release(&self, lease: &Lease) -> Result<bool> {
        self.lease_call(&RELEASE, lease, &[]).await
    }

    async fn stats(&self, queues: &[&str]) -> Result<Vec<QueueStats>> {
        let mut pipe = redis::pipe();
        for queue in queues {
            for set in ["pending", "running", "retry", "dead"] {
                pipe.zcard(self.queue_key(queue, set));
            }
        }
        let mut connection = self.connection().await?;
        let counts: Vec<u64> =
            match tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async(&mut connection)).await {
                Ok(result) => result.map_err(|e| self.error(e))?,
                Err(_) => return Err(unavailable(&self.url, "no answer within 2 s")),
            };
        Ok(queues
            .iter()
            .zip(counts.chunks_exact(4))
            .map(|(name, c)| QueueStats {
                name: (*name).to_owned(),
                pending: c[0],
                running: c[1],
                failed: c[2],
                dead: c[3],
            })
            .collect())
    }

    async fn list(&self, queue: &str, state: JobState, limit: u32) -> Result<Vec<JobInfo>> {
        let set = match state {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Retrying => "retry",
            JobState::Dead => "dead",
        };
        let mut connection = self.connection().await?;
        let stop = isize::try_from(limit)
            .unwrap_or(isize::MAX)
            .saturating_sub(1);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let fetch = async {
            let ids: Vec<String> = connection
                .zrange(self.queue_key(queue, set), 0, stop)
                .await?;
            // An empty pipeline is refused by the client ("empty command").
            if ids.is_empty() {
                return Ok((ids, Vec::new()));
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.hgetall(self.key(&format!("job:{id}")));
            }
            let hashes: Vec<std::collections::HashMap<String, String>> =
                pipe.query_async(&mut connection).await?;
            Ok::<_, redis::RedisError>((ids, hashes))
        };
        let (ids, hashes) = match tokio::time::timeout(COMMAND_TIMEOUT, fetch).await {
            Ok(result) => result.map_err(|e| self.error(e))?,
            Err(_) => return Err(unavailable(&self.url, "no answer within 2 s")),
        };
        Ok(ids
            .into_iter()
            .zip(hashes)
            .filter(|(_, h)| !h.is_empty())
            .map(|(id, h)| {
                let int = |k: &str| h.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
                JobInfo {
                    queue: queue.to_owned(),
                    id,
                    state: h
                        .get("state")
                        .and_then(|s| JobState::parse(s))
                        .unwrap_or(state),
                    attempts: u32::try_from(int("attempts")).unwrap_or(0),
                    max_attempts: u32::try_from(int("max")).unwrap_or(0),
                    last_error: h.get("error").filter(|e| !e.is_empty()).cloned(),
                    payload: h.get("payload").cloned().unwrap_or_default(),
                    created_at_ms: int("created"),
                    updated_at_ms: int("updated"),
                }
            })
            .collect())
    }

    async fn retry_dead(&self, queue: &str, id: Option<&str>) -> Result<u64> {
        let mut invocation = RETRY_DEAD.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(queue)
            .arg(id.unwrap_or(""));
        self.run(invocation).await
    }

    async fn purge_dead(&self, queue: &str, id: Option<&str>) -> Result<u64> {
        let mut invocation = PURGE_DEAD.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(queue)
            .arg(id.unwrap_or(""));
        self.run(invocation).await
    }

    async fn claim_schedule(&self, name: &str, slot: i64, keep: Duration) -> Result<bool> {
        let mut connection = self.connection().await?;
        let key = self.key(&format!("schedule:{name}:{slot}"));
        let mut command = redis::cmd("SET");
        command
            .arg(&key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis(keep).max(1));
        let set = command.query_async::<Value>(&mut connection);
        match tokio::time::timeout(COMMAND_TIMEOUT, set).await {
            Ok(Ok(Value::Okay)) => Ok(true),
            Ok(Ok(_)) => Ok(false),
            Ok(Err(e)) => Err(self.error(e)),
            Err(_) => Err(unavailable(&self.url, "no answer within 2 s")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("redis://:secret@cache:6379/0"),
            "redis://…@cache:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
