#!/usr/bin/env bash
# Measures the JUnit reader's peak memory on a large report: builds the parse_big example in
# release and streams a generated report (default 1G; nothing is written to disk) through
# it under /usr/bin/time -v, printing the "Maximum resident set size".
# Usage: scripts/measure-rss.sh [SIZE]   e.g. 1G, 100M
set -euo pipefail
size="${1:-1G}"
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/time ]; then
    echo "/usr/bin/time is missing: apt-get update && apt-get install -y time" >&2
    exit 1
fi
cargo build --release --quiet -p flakeguard-junit --example parse_big
target_dir="${CARGO_TARGET_DIR:-target}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
/usr/bin/time -v "$target_dir/release/examples/parse_big" "$size" 2>"$log"
grep -E "Maximum resident set size|Elapsed \(wall clock\)" "$log"
