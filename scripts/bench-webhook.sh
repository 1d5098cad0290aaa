#!/usr/bin/env bash
# Webhook acceptance under load (issue #5's goal: p99 < 20 ms at 2,000 requests/s with the
# signature checked and every delivery stored on PostgreSQL and queued on Redis).
#
#   scripts/bench-webhook.sh [DURATION_SECONDS] [CONNECTIONS] [DELAY_MS]
#
# wrk 4 has no rate option: each connection pauses DELAY_MS between requests, so the rate is
# about CONNECTIONS / (DELAY_MS + latency); 40 connections and 10 ms give ~2,000-2,300/s.
#
# Builds the release binary, starts `flakeguard api` alone (no worker: this measures
# acceptance, the deliveries stay queued) on a fresh PostgreSQL database and a Redis key
# prefix of its own, drives it with wrk (Debian package `wrk`) on loopback with the real
# workflow_run payload from shared/fixtures, and removes everything it created.
# Needs PostgreSQL (TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres)
# and Redis (TEST_REDIS_URL, default redis://127.0.0.1:6379).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-30}
CONNECTIONS=${2:-40}
DELAY_MS=${3:-10}
PG=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# A Redis database number of its own: the queue's keys are always under {flakeguard}.
REDIS=${TEST_REDIS_URL:-redis://127.0.0.1:6379}
REDIS_DB_URL="${REDIS%/}/11"
FIXTURES=${FLAKEGUARD_FIXTURES:-../shared/fixtures}
PAYLOAD=${WEBHOOK_PAYLOAD:-$FIXTURES/github-webhooks/workflow_run/completed.payload.json}
SECRET=bench-webhook-secret-0123456789
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

cargo build --release -q -p flakeguard
DB="fg_bench_webhook_$$"
psql "$PG" -qc "CREATE DATABASE $DB" >/dev/null
DB_URL="${PG%/*}/$DB"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  psql "$PG" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null || true
  redis-cli -u "$REDIS_DB_URL" --scan --pattern '{flakeguard}*' | xargs -r redis-cli -u "$REDIS_DB_URL" del >/dev/null || true
}
trap cleanup EXIT

DATABASE_URL="$DB_URL" REDIS_URL="$REDIS_DB_URL" \
GITHUB_WEBHOOK_SECRET="$SECRET" PORT="$PORT" HOST=127.0.0.1 LOG_LEVEL=warn \
  target/release/flakeguard api --migrate >/tmp/fg-bench-webhook.log 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/health/live" >/dev/null 2>&1 && break
  sleep 0.1
done

export WEBHOOK_BODY_CONTENT
WEBHOOK_BODY_CONTENT=$(cat "$PAYLOAD")
export WEBHOOK_SIGNATURE="sha256=$(printf '%s' "$WEBHOOK_BODY_CONTENT" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)"
export WEBHOOK_DELAY_MS=$DELAY_MS WEBHOOK_RUN=$$

echo "payload $(printf '%s' "$WEBHOOK_BODY_CONTENT" | wc -c) bytes, $CONNECTIONS connections, ${DELAY_MS} ms pause per connection, ${DURATION} s"
# Warm-up (connections, the pool, PostgreSQL's caches) with delivery ids of its own, then
# the measured run: every request a new delivery.
WEBHOOK_RUN="warm-$$" wrk -t2 -c"$CONNECTIONS" -d5s -s scripts/bench/webhook.lua "http://127.0.0.1:$PORT" >/dev/null
WARM=$(psql "$DB_URL" -tAc "SELECT count(*) FROM webhook_deliveries")
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s scripts/bench/webhook.lua "http://127.0.0.1:$PORT"
STORED=$(psql "$DB_URL" -tAc "SELECT count(*) FROM webhook_deliveries")
QUEUED=$(redis-cli -u "$REDIS_DB_URL" zcard '{flakeguard}:q:process_webhook:pending')
echo "deliveries stored: $((STORED - WARM)) in the measured run ($STORED with the warm-up), jobs queued: $QUEUED"
