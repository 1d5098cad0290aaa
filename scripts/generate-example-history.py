#!/usr/bin/env python3
"""Writes examples/history/: a made-up web shop's CI history over a dozen runs.

One flaky test (a checkout test that times out now and then, once passing on a re-run of
the same commit), one test broken by a commit half way through, the rest stable. The output
is committed; re-running this script reproduces it byte for byte.
"""
import json
import os
import random
from datetime import datetime, timedelta, timezone

OUT = os.path.join(os.path.dirname(__file__), "..", "examples", "history")
START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)

TESTS = [
    ("tests/cart.test.ts", "cart", "adds an item"),
    ("tests/cart.test.ts", "cart", "removes an item"),
    ("tests/cart.test.ts", "cart", "totals include tax"),  # broken from run 7
    ("tests/checkout.test.ts", "checkout", "charges the card"),
    ("tests/checkout.test.ts", "checkout", "applies a discount code under load"),  # flaky
    ("tests/checkout.test.ts", "checkout", "sends the receipt email"),
    ("tests/search.test.ts", "search", "finds products by name"),
    ("tests/search.test.ts", "search", "ranks exact matches first"),
    ("tests/auth.test.ts", "auth", "logs in with a password"),
    ("tests/auth.test.ts", "auth", "locks the account after five failures"),
]
FLAKY = "applies a discount code under load"
BROKEN = "totals include tax"
# Runs (1-based) in which the flaky test fails on its first attempt.
FLAKY_FAILS = {3, 5, 9, 11}
BROKEN_FROM = 7


def escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def testcase(file, classname, name, failure, time):
    head = f'    <testcase classname="{escape(classname)}" name="{escape(name)}" file="{file}" time="{time:.3f}"'
    if failure is None:
        return head + "/>\n"
    message, text = failure
    return head + f'>\n      <failure message="{escape(message)}" type="Error">{escape(text)}</failure>\n    </testcase>\n'


def flaky_failure(rng):
    port = rng.randint(40000, 60000)
    ms = rng.choice([5000, 5000, 5001])
    return (
        f"Timeout of {ms}ms exceeded waiting for POST http://127.0.0.1:{port}/api/discounts",
        f"Error: Timeout of {ms}ms exceeded\n    at Object.<anonymous> (tests/checkout.test.ts:88:11)",
    )


def broken_failure():
    return (
        "expected 107.99 to equal 108.00",
        "AssertionError: expected 107.99 to equal 108.00\n    at tests/cart.test.ts:42:23",
    )


def write_run(directory, meta, failures, rng):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "flakeguard-run.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    by_suite = {}
    for file, classname, name in TESTS:
        by_suite.setdefault(classname, []).append((file, classname, name))
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n', '<testsuites name="jest tests">\n']
    for suite, cases in by_suite.items():
        n_fail = sum(1 for c in cases if c[2] in failures)
        parts.append(f'  <testsuite name="{suite}" tests="{len(cases)}" failures="{n_fail}" errors="0" skipped="0" timestamp="{meta["started_at"]}">\n')
        for file, classname, name in cases:
            parts.append(testcase(file, classname, name, failures.get(name), rng.uniform(0.01, 1.5)))
        parts.append("  </testsuite>\n")
    parts.append("</testsuites>\n")
    with open(os.path.join(directory, "junit.xml"), "w") as f:
        f.write("".join(parts))


def main():
    rng = random.Random(20261102)
    for run in range(1, 13):
        started = START + timedelta(hours=7 * run)
        commit = "%040x" % random.Random(run).getrandbits(160)
        meta = {
            "commit": commit,
            "branch": "main",
            "run_id": f"ci-{1000 + run}",
            "attempt": 1,
            "started_at": started.isoformat().replace("+00:00", "Z"),
        }
        failures = {}
        if run in FLAKY_FAILS:
            failures[FLAKY] = flaky_failure(rng)
        if run >= BROKEN_FROM:
            failures[BROKEN] = broken_failure()
        write_run(os.path.join(OUT, f"run-{run:02}"), meta, failures, rng)
        if run == 5:
            # The team re-ran run 5 on the same commit: the flaky test passed.
            rerun = dict(meta, attempt=2, started_at=(started + timedelta(minutes=20)).isoformat().replace("+00:00", "Z"))
            write_run(os.path.join(OUT, f"run-{run:02}-rerun"), rerun, {}, rng)


if __name__ == "__main__":
    main()
