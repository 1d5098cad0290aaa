#!/usr/bin/env bash
# Seeds the fuzz corpus with every JUnit fixture in shared/fixtures (never committed:
# fuzz/corpus/ is gitignored). Usage: fuzz/seed.sh [fixtures-dir]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="${1:-$here/../../shared/fixtures/junit}"
dest="$here/corpus/junit_reader"
if [ ! -d "$src" ]; then
    echo "fixtures not found at $src" >&2
    exit 1
fi
mkdir -p "$dest"
n=0
while IFS= read -r -d '' f; do
    rel="${f#"$src"/}"
    # Flatten the path into one safe file name: producer dir + file name.
    name="$(printf '%s' "$rel" | tr -c 'A-Za-z0-9._-' '_')"
    install -m 0644 "$f" "$dest/$name"
    n=$((n + 1))
done < <(find "$src" -type f -name '*.xml' -print0)
echo "seeded $n files into $dest"
