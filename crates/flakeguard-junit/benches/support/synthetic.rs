//! A deterministic synthetic JUnit report of any size, produced lazily through [`Read`] so
//! that a gigabyte report never has to exist in memory or on disk. Shared by the `parse`
//! benchmark and the `parse_big` example.
//!
//! Shape (Surefire-like): suites of 200 testcases with `classname`/`name`/`time` and a few
//! properties; about 5% of testcases fail with a `<failure message=..>` and a 2–4 KB stack
//! trace, 1% pass after a `<flakyFailure>`, 2% are skipped, 10% carry `<system-out>`.

// The benchmark and the example each use part of this module.
#![allow(dead_code)]

use std::io::{self, Read};

/// Testcases per `<testsuite>`.
const CASES_PER_SUITE: u64 = 200;

/// Streams a report of at least `target` bytes (it stops after the suite that reaches it).
#[derive(Debug)]
pub(crate) struct SyntheticReport {
    target: u64,
    produced: u64,
    buf: Vec<u8>,
    pos: usize,
    rng: u64,
    suites: u64,
    testcases: u64,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Suites,
    Done,
}

impl SyntheticReport {
    pub(crate) fn new(target: u64) -> Self {
        SyntheticReport {
            target,
            produced: 0,
            buf: Vec::with_capacity(256 << 10),
            pos: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
            suites: 0,
            testcases: 0,
            state: State::Header,
        }
    }

    /// Builds the whole report in memory: `(bytes, testcases)`.
    pub(crate) fn generate(target: u64) -> (Vec<u8>, u64) {
        let mut report = SyntheticReport::new(target);
        let mut out = Vec::with_capacity(usize::try_from(target).unwrap_or(0) + (1 << 20));
        report
            .read_to_end(&mut out)
            .expect("generating in memory cannot fail");
        (out, report.testcases)
    }

    /// xorshift64*: deterministic and fast.
    fn next(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn refill(&mut self) {
        self.buf.clear();
        self.pos = 0;
        match self.state {
            State::Header => {
                self.buf.extend_from_slice(
                    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"synthetic\">\n",
                );
                self.state = State::Suites;
            }
            State::Suites if self.produced >= self.target => {
                self.buf.extend_from_slice(b"</testsuites>\n");
                self.state = State::Done;
            }
            State::Suites => self.write_suite(),
            State::Done => {}
        }
        self.produced += self.buf.len() as u64;
    }

    fn write_suite(&mut self) {
        use std::io::Write;
        let s = self.suites;
        self.suites += 1;
        let module = s % 37;
        let class = format!("com.example.module{module}.service.Component{s}Test");
        // Decide every case up front so the suite's counts are right.
        let kinds: Vec<u64> = (0..CASES_PER_SUITE).map(|_| self.below(100)).collect();
        let failures = kinds.iter().filter(|&&k| k < 5).count();
        let skipped = kinds.iter().filter(|&&k| (6..8).contains(&k)).count();
        let mut b = std::mem::take(&mut self.buf);
        let _ = writeln!(
            b,
            "  <testsuite name=\"{class}\" tests=\"{CASES_PER_SUITE}\" failures=\"{failures}\" \
             errors=\"0\" skipped=\"{skipped}\" time=\"{}.{:03}\" \
             timestamp=\"2025-06-01T12:{:02}:{:02}\" hostname=\"ci-runner-{}\">",
            self.below(60),
            self.below(1000),
            s / 60 % 60,
            s % 60,
            s % 8,
        );
        b.extend_from_slice(b"    <properties>\n");
        for (k, v) in [
            ("java.version", "21.0.3"),
            ("os.name", "Linux"),
            ("user.dir", "/home/runner/work/example"),
            (
                "surefire.test.class.path",
                "target/test-classes:target/classes",
            ),
        ] {
            let _ = writeln!(b, "      <property name=\"{k}\" value=\"{v}\"/>");
        }
        b.extend_from_slice(b"    </properties>\n");
        for (i, kind) in kinds.into_iter().enumerate() {
            self.testcases += 1;
            let time_ms = self.below(5000);
            let _ = write!(
                b,
                "    <testcase name=\"test{i}_shouldHandleRequest_whenInputIsValid\" \
                 classname=\"{class}\" time=\"{}.{:03}\"",
                time_ms / 1000,
                time_ms % 1000
            );
            match kind {
                0..=4 => {
                    b.extend_from_slice(b">\n      <failure message=\"expected: &lt;");
                    let _ = write!(
                        b,
                        "{}&gt; but was: &lt;{}&gt;\" type=\"org.opentest4j.AssertionFailedError\">",
                        self.below(1000),
                        self.below(1000)
                    );
                    self.stack_trace(&mut b, &class);
                    b.extend_from_slice(b"</failure>\n");
                    if kind == 0 {
                        self.system_out(&mut b, i);
                    }
                    b.extend_from_slice(b"    </testcase>\n");
                }
                5 => {
                    b.extend_from_slice(
                        b">\n      <flakyFailure message=\"Connection reset\" \
                          type=\"java.net.SocketException\">\n        <stackTrace>",
                    );
                    self.stack_trace(&mut b, &class);
                    b.extend_from_slice(b"</stackTrace>\n");
                    b.extend_from_slice(
                        b"        <system-out>retrying after connection reset</system-out>\n      </flakyFailure>\n    </testcase>\n",
                    );
                }
                6 | 7 => {
                    b.extend_from_slice(
                        b">\n      <skipped message=\"disabled on CI\"/>\n    </testcase>\n",
                    );
                }
                8..=16 => {
                    b.extend_from_slice(b">\n");
                    self.system_out(&mut b, i);
                    b.extend_from_slice(b"    </testcase>\n");
                }
                _ => b.extend_from_slice(b"/>\n"),
            }
        }
        b.extend_from_slice(b"  </testsuite>\n");
        self.buf = b;
    }

    /// 2–4 KB of Java stack trace, with escaped `<init>` frames.
    fn stack_trace(&mut self, b: &mut Vec<u8>, class: &str) {
        use std::io::Write;
        let frames = 30 + self.below(25);
        b.extend_from_slice(
            b"org.opentest4j.AssertionFailedError: expected: &lt;true&gt; but was: &lt;false&gt;\n",
        );
        for f in 0..frames {
            let line = 10 + self.below(400);
            match f % 4 {
                0 => {
                    let _ = writeln!(
                        b,
                        "\tat {class}.lambda$test{f}$0(ComponentTest.java:{line})"
                    );
                }
                1 => {
                    let _ = writeln!(
                        b,
                        "\tat org.junit.jupiter.engine.execution.MethodInvocation.proceed(MethodInvocation.java:{line})"
                    );
                }
                2 => {
                    let _ = writeln!(
                        b,
                        "\tat com.example.core.Handler.&lt;init&gt;(Handler.java:{line})"
                    );
                }
                _ => {
                    let _ = writeln!(
                        b,
                        "\tat java.base/java.util.ArrayList.forEach(ArrayList.java:{line})"
                    );
                }
            }
        }
    }

    fn system_out(&mut self, b: &mut Vec<u8>, i: usize) {
        use std::io::Write;
        b.extend_from_slice(b"      <system-out><![CDATA[");
        for l in 0..(2 + self.below(6)) {
            let _ = writeln!(
                b,
                "12:00:{:02}.{:03} [main] INFO  c.e.Service - request {i}.{l} handled in {} ms",
                l % 60,
                self.below(1000),
                self.below(500)
            );
        }
        b.extend_from_slice(b"]]></system-out>\n");
    }
}

impl Read for SyntheticReport {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.buf.len() {
            if self.state == State::Done {
                return Ok(0);
            }
            self.refill();
        }
        let n = (self.buf.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
