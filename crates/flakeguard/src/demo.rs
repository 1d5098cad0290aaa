//! The demo history of `flakeguard seed --demo`: three repositories with 90 days of CI runs
//! ending at `now`, shaped so that the dashboard has something true to show.
//!
//! Each repository has a few hundred tests in the naming style of its ecosystem (Jest and
//! pytest, JUnit 5 under Surefire, cargo-nextest). Pull requests are opened on working days,
//! pushed to a few times and mostly merged; every push runs the PR's jobs and every merge runs
//! the default branch's jobs. Most tests always pass. A handful are designed to show each thing
//! FlakeGuard judges: flaky tests at failure rates from 2 % to 30 % with recurring messages
//! (timeouts, refused connections, timing assertions), tests broken by a commit and failing the
//! same way ever since, a test broken only on macOS, one that became flaky recently, one whose
//! flakiness was fixed, one infrastructure outage per repository, tests added and removed over
//! time, and a few skipped ones. Failed jobs are sometimes re-run (attempt 2 of the same CI
//! run), and two repositories retry failed tests inside the run (nextest, Surefire).
//!
//! Everything is deterministic: the generator has its own small PRNG (splitmix64) with fixed
//! seeds, and every timestamp is an offset from `now`, so the same `now` gives the same data and
//! another `now` gives the same data shifted in time. Run ids and report digests do not depend
//! on `now`, so seeding again (even days later) stores nothing twice.

use flakeguard_core::{Outcome, TestKey, signature};
use flakeguard_store::{NewExecution, NewRun, NewTestCase, Source};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

#[cfg(test)]
use flakeguard_core::Status;

/// How far back the history reaches.
const HISTORY_DAYS: i64 = 90;
const MINUTES_PER_DAY: i64 = 24 * 60;
/// The store keeps messages this long at most.
const MAX_MESSAGE_BYTES: usize = 4096;

/// The whole demo dataset.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DemoData {
    pub(crate) repos: Vec<DemoRepo>,
}

/// One repository's history and quarantines.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DemoRepo {
    /// `owner/name`.
    pub(crate) slug: String,
    /// In time order (started_at, run id, attempt, job).
    pub(crate) runs: Vec<DemoRun>,
    pub(crate) quarantine: Vec<DemoQuarantine>,
}

/// One stored run, exactly as `Store::ingest(repo, &run, &tests, &executions)` takes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DemoRun {
    pub(crate) run: NewRun,
    pub(crate) tests: Vec<NewTestCase>,
    /// `test` indexes `tests`.
    pub(crate) executions: Vec<NewExecution>,
}

/// A quarantine to create for a flaky test of the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DemoQuarantine {
    pub(crate) key: TestKey,
    pub(crate) reason: String,
    pub(crate) owner: Option<String>,
    /// Quarantined this many days before `now`.
    pub(crate) days_ago: i64,
    /// Expires this many days after `now`; `None` never expires.
    pub(crate) expires_in_days: Option<i64>,
}

/// The demo history, ending at `now`.
pub(crate) fn generate(now: OffsetDateTime) -> DemoData {
    DemoData {
        repos: REPOS.iter().map(|spec| build_repo(spec, now).0).collect(),
    }
}

// ---- Randomness ----------------------------------------------------------------------------

/// splitmix64: tiny, fast, and plenty for made-up data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    /// A generator fixed by coordinates, so one decision does not depend on how many others
    /// were made before it.
    fn at(parts: &[u64]) -> Self {
        Rng(parts
            .iter()
            .fold(0x5eed_f1a6_e6ad_0001, |h, &p| mix(h ^ mix(p))))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        let span = (hi - lo) as u64 + 1;
        lo + (self.next_u64() % span) as i64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }

    /// Log-uniform in `lo..hi`: durations spread over orders of magnitude.
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo * (hi / lo).powf(self.unit())
    }

    /// Poisson-distributed count (Knuth's method; `lambda` is small here).
    fn poisson(&mut self, lambda: f64) -> u32 {
        let limit = (-lambda).exp();
        let mut product = self.unit();
        let mut count = 0;
        while product > limit {
            count += 1;
            product *= self.unit();
        }
        count
    }

    fn hex(&mut self, digits: usize) -> String {
        let mut s = String::with_capacity(digits + 16);
        while s.len() < digits {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(digits);
        s
    }

    /// `k` distinct items of `items`, in a random order.
    fn sample<'a, T>(&mut self, items: &'a [T], k: usize) -> Vec<&'a T> {
        let mut order: Vec<usize> = (0..items.len()).collect();
        for i in (1..order.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        order.into_iter().take(k).map(|i| &items[i]).collect()
    }
}

/// The splitmix64 finalizer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

// Salts of the keyed decisions.
const SALT_OUTCOME: u64 = 1;
const SALT_DURATION: u64 = 2;
const SALT_RERUN: u64 = 3;
const SALT_OUTAGE: u64 = 4;
const SALT_JOB: u64 = 5;
const SALT_CATALOGUE: u64 = 6;
const SALT_TIMELINE: u64 = 7;
const SALT_RUN_IDS: u64 = 8;

// ---- What the repositories look like -------------------------------------------------------

/// A failure as the test reports it. `template` may hold the placeholders of [`render`],
/// filled in per occurrence: the message varies from one
/// failure to the next the way real ones do, and its signature does not.
#[derive(Debug, Clone, Copy)]
struct Failure {
    outcome: Outcome,
    template: &'static str,
    /// A timeout's failures last about this long.
    timeout_ms: Option<u64>,
}

const fn failed(template: &'static str) -> Failure {
    Failure {
        outcome: Outcome::Failed,
        template,
        timeout_ms: None,
    }
}

const fn errored(template: &'static str) -> Failure {
    Failure {
        outcome: Outcome::Error,
        template,
        timeout_ms: None,
    }
}

const fn timed_out(outcome: Outcome, template: &'static str, ms: u64) -> Failure {
    Failure {
        outcome,
        template,
        timeout_ms: Some(ms),
    }
}

/// How a test behaves over the history. Days count from the start of the history (0) to
/// `now` (90); a change "from day d" arrives with the first merge to the default branch on or
/// after that day, so pull requests based on older code do not have it yet.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    Stable,
    /// Disabled in the code (`@Disabled`, `#[ignore]`, `it.skip`).
    Skipped,
    Flaky {
        rate: f64,
        failure: Failure,
        /// Flaky from this change on (before it, stable).
        from_day: Option<i64>,
        /// Fixed by this change.
        until_day: Option<i64>,
        /// Flaky only in jobs whose name contains this.
        only_job: Option<&'static str>,
    },
    Broken {
        from_day: i64,
        failure: Failure,
        /// Broken only in jobs whose name contains this.
        only_job: Option<&'static str>,
    },
}

const fn flaky(rate: f64, failure: Failure) -> Behaviour {
    Behaviour::Flaky {
        rate,
        failure,
        from_day: None,
        until_day: None,
        only_job: None,
    }
}

#[derive(Debug, Clone, Copy)]
struct QuarantineSpec {
    reason: &'static str,
    owner: Option<&'static str>,
    days_ago: i64,
    expires_in_days: Option<i64>,
}

/// A hand-written test with a designed behaviour.
#[derive(Debug, Clone, Copy)]
struct Notable {
    file: Option<&'static str>,
    suite: &'static str,
    classname: Option<&'static str>,
    name: &'static str,
    base_ms: u64,
    behaviour: Behaviour,
    /// The verdict the scoring engine should reach with the default policy (checked by the
    /// tests); `None` when the test is too rarely flaky to be sure within one window.
    expect: Option<Expect>,
    quarantine: Option<QuarantineSpec>,
}

/// The verdict a designed test should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Flaky,
    Broken,
    Stable,
}

/// A CI outage: in the first default-branch run of `job` on or after `day`, `share` of the
/// job's tests fail with the same message (a lost service, a full disk). The job is re-run.
#[derive(Debug, Clone, Copy)]
struct Outage {
    day: i64,
    job: &'static str,
    share: f64,
    failure: Failure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stack {
    /// Jest (components, libraries) and pytest (the API).
    WebShop,
    /// JUnit 5 through Surefire; `*Test` classes in the unit job, `*IT` in the integration job.
    Payments,
    /// cargo-nextest.
    Cli,
}

#[derive(Debug)]
struct RepoSpec {
    slug: &'static str,
    seed: u64,
    stack: Stack,
    /// Stable tests generated around the notable ones.
    fillers: usize,
    /// New pull requests per working day, on average.
    prs_per_day: f64,
    main_jobs: &'static [&'static str],
    pr_jobs: &'static [&'static str],
    /// In-run retries of a failed test (nextest `--retries`, Surefire
    /// `rerunFailingTestsCount`).
    retries: u32,
    first_pr: i64,
    first_run_id: u64,
    /// Words for branch names, separated by spaces.
    topics: &'static str,
    /// Dependencies Dependabot updates, separated by spaces.
    dependencies: &'static str,
    dependabot_ecosystem: &'static str,
    outage: Outage,
    notables: &'static [Notable],
}

const REPOS: &[RepoSpec] = &[WEB_SHOP, PAYMENTS_API, CLI_TOOLS];

const JEST_TIMEOUT: &str = "thrown: \"Exceeded timeout of 5000 ms for a test.\nAdd a timeout value to this test to increase the timeout, if this is a long-running test. See https://jestjs.io/docs/api#testname-fn-timeout.\"";

const WEB_SHOP: RepoSpec = RepoSpec {
    slug: "demo/web-shop",
    seed: 0x7765_6273_686f_7001,
    stack: Stack::WebShop,
    fillers: 225,
    prs_per_day: 0.8,
    main_jobs: &["test (ubuntu)", "test (macos)"],
    pr_jobs: &["test (ubuntu)"],
    retries: 0,
    first_pr: 1184,
    first_run_id: 9_114_052_311,
    topics: "checkout cart coupons search filters gallery reviews wishlist shipping tax i18n a11y login account orders inventory webhooks analytics pricing header footer pagination images emails",
    dependencies: "react-dom jest typescript eslint vite pytest django sqlalchemy requests testing-library/react date-fns",
    dependabot_ecosystem: "npm_and_yarn",
    outage: Outage {
        day: 61,
        job: "test (ubuntu)",
        share: 0.45,
        failure: errored(
            "Error: connect ECONNREFUSED 127.0.0.1:6379\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1595:16)",
        ),
    },
    notables: &[
        Notable {
            file: Some("src/components/CheckoutForm/CheckoutForm.test.tsx"),
            suite: "CheckoutForm",
            classname: Some("CheckoutForm"),
            name: "submits the order and redirects to the confirmation page",
            base_ms: 1850,
            behaviour: flaky(0.18, timed_out(Outcome::Failed, JEST_TIMEOUT, 5000)),
            expect: Some(Expect::Flaky),
            quarantine: Some(QuarantineSpec {
                reason: "Times out in about one run in six since the payment step became async; tracked in #1211.",
                owner: Some("@demo/storefront-team"),
                days_ago: 9,
                expires_in_days: Some(21),
            }),
        },
        Notable {
            file: Some("tests/api/test_webhooks.py"),
            suite: "pytest",
            classname: Some("tests.api.test_webhooks.TestWebhookDelivery"),
            name: "test_delivers_event_to_subscriber",
            base_ms: 640,
            behaviour: flaky(
                0.11,
                errored(
                    "requests.exceptions.ConnectionError: HTTPConnectionPool(host='127.0.0.1', port=$PORT): Max retries exceeded with url: /hooks/$N (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at 0x$HEX>: Failed to establish a new connection: [Errno 111] Connection refused'))",
                ),
            ),
            expect: Some(Expect::Flaky),
            quarantine: Some(QuarantineSpec {
                reason: "The stub subscriber sometimes is not listening yet when the first event is sent.",
                owner: Some("@demo/platform-team"),
                days_ago: 16,
                expires_in_days: None,
            }),
        },
        Notable {
            file: Some("tests/api/test_search.py"),
            suite: "pytest",
            classname: Some("tests.api.test_search.TestSearchPerformance"),
            name: "test_search_responds_within_budget",
            base_ms: 180,
            behaviour: flaky(
                0.04,
                failed("AssertionError: search took $MSms, budget is 250ms\nassert $MS < 250"),
            ),
            expect: None,
            quarantine: None,
        },
        Notable {
            file: Some("src/components/Toast/Toast.test.tsx"),
            suite: "Toast",
            classname: Some("Toast"),
            name: "dismisses itself after the delay",
            base_ms: 45,
            behaviour: flaky(
                0.02,
                failed(
                    "expect(jest.fn()).toHaveBeenCalledTimes(expected)\n\nExpected number of calls: 1\nReceived number of calls: 0",
                ),
            ),
            expect: None,
            quarantine: None,
        },
        Notable {
            file: Some("src/components/ProductGallery/ProductGallery.test.tsx"),
            suite: "ProductGallery",
            classname: Some("ProductGallery"),
            name: "lazy-loads images as they scroll into view",
            base_ms: 220,
            behaviour: Behaviour::Flaky {
                rate: 0.25,
                failure: failed(
                    "TestingLibraryElementError: Unable to find an element with the alt text: Product photo $N of 8",
                ),
                from_day: None,
                until_day: None,
                only_job: Some("macos"),
            },
            // Flaky on one platform only: the engine judges each job on its own, so a few
            // failures on macOS can read as flaky or as commits breaking and fixing it.
            expect: None,
            quarantine: None,
        },
        Notable {
            file: Some("tests/api/test_coupons.py"),
            suite: "pytest",
            classname: Some("tests.api.test_coupons.TestCoupons"),
            name: "test_seasonal_coupon_is_accepted",
            base_ms: 95,
            behaviour: Behaviour::Broken {
                from_day: 79,
                failure: failed(
                    "AssertionError: assert 400 == 200\n +  where 400 = <Response [400]>.status_code\n  detail: coupon SPRING25 expired",
                ),
                only_job: None,
            },
            expect: Some(Expect::Broken),
            quarantine: None,
        },
        Notable {
            file: Some("src/lib/money.test.ts"),
            suite: "formatMoney",
            classname: Some("formatMoney"),
            name: "formats EUR with the German locale",
            base_ms: 6,
            behaviour: Behaviour::Broken {
                from_day: 71,
                failure: failed(
                    "expect(received).toBe(expected) // Object.is equality\n\nExpected: \"12,00 €\"\nReceived: \"12,00 EUR\"",
                ),
                only_job: None,
            },
            expect: Some(Expect::Broken),
            quarantine: None,
        },
        Notable {
            file: Some("src/components/CartDrawer/CartDrawer.test.tsx"),
            suite: "CartDrawer",
            classname: Some("CartDrawer"),
            name: "keeps the drawer open while the quantity updates",
            base_ms: 130,
            behaviour: Behaviour::Flaky {
                rate: 0.25,
                failure: failed(
                    "TestingLibraryElementError: Unable to find role=\"dialog\"\n\nIgnored nodes: comments, script, style",
                ),
                from_day: Some(76),
                until_day: None,
                only_job: None,
            },
            expect: Some(Expect::Flaky),
            quarantine: None,
        },
        Notable {
            file: Some("tests/api/test_orders.py"),
            suite: "pytest",
            classname: Some("tests.api.test_orders.TestCheckout"),
            name: "test_concurrent_checkout_reserves_stock_once",
            base_ms: 410,
            behaviour: Behaviour::Flaky {
                rate: 0.2,
                failure: failed(
                    "AssertionError: assert 2 == 1\n +  where 2 = len([<Reservation $N>, <Reservation $N>])",
                ),
                from_day: None,
                until_day: Some(42),
                only_job: None,
            },
            expect: Some(Expect::Stable),
            quarantine: None,
        },
        Notable {
            file: Some("src/components/ReviewList/ReviewList.test.tsx"),
            suite: "ReviewList",
            classname: Some("ReviewList"),
            name: "renders star ratings with half stars",
            base_ms: 0,
            behaviour: Behaviour::Skipped,
            expect: None,
            quarantine: None,
        },
    ],
};

const PAYMENTS_API: RepoSpec = RepoSpec {
    slug: "demo/payments-api",
    seed: 0x7061_796d_656e_7402,
    stack: Stack::Payments,
    fillers: 300,
    prs_per_day: 0.65,
    main_jobs: &["unit", "integration (postgres)"],
    pr_jobs: &["unit", "integration (postgres)"],
    retries: 1,
    first_pr: 472,
    first_run_id: 9_117_330_904,
    topics: "ledger refunds payouts fx-rates webhooks fraud-rules idempotency card-auth 3ds settlement audit-log disputes fees reconciliation api-errors retries outbox migrations",
    dependencies: "spring-boot-starter-parent testcontainers-bom jackson-databind postgresql flyway-core awaitility mockito-core",
    dependabot_ecosystem: "maven",
    outage: Outage {
        day: 66,
        job: "integration",
        share: 0.9,
        failure: errored(
            "java.lang.IllegalStateException: Could not find a valid Docker environment. Please see logs and check configuration",
        ),
    },
    notables: &[
        Notable {
            file: None,
            suite: "com.demo.payments.webhook.WebhookDispatcherIT",
            classname: Some("com.demo.payments.webhook.WebhookDispatcherIT"),
            name: "deliversEventsInOrder()",
            base_ms: 2400,
            behaviour: flaky(
                0.26,
                timed_out(
                    Outcome::Error,
                    "org.awaitility.core.ConditionTimeoutException: Condition with lambda expression in com.demo.payments.webhook.WebhookDispatcherIT that uses java.util.List was not fulfilled within 10 seconds.",
                    10_000,
                ),
            ),
            expect: Some(Expect::Flaky),
            quarantine: Some(QuarantineSpec {
                reason: "Outbox poller and dispatcher race; events arrive out of order under load. Fix in progress (#503).",
                owner: Some("@demo/payments-team"),
                days_ago: 12,
                expires_in_days: Some(14),
            }),
        },
        Notable {
            file: None,
            suite: "com.demo.payments.ledger.LedgerRepositoryIT",
            classname: Some("com.demo.payments.ledger.LedgerRepositoryIT"),
            name: "locksAccountRowDuringTransfer()",
            base_ms: 900,
            behaviour: flaky(
                0.12,
                errored(
                    "org.springframework.dao.CannotAcquireLockException: could not execute statement [ERROR: deadlock detected\n  Detail: Process $PID waits for ShareLock on transaction $N; blocked by process $PID.]",
                ),
            ),
            expect: Some(Expect::Flaky),
            quarantine: Some(QuarantineSpec {
                reason: "Deadlock between the transfer and the nightly interest job's fixture.",
                owner: Some("@demo/payments-team"),
                days_ago: 4,
                expires_in_days: Some(30),
            }),
        },
        Notable {
            file: None,
            suite: "com.demo.payments.fx.RateClientIT",
            classname: Some("com.demo.payments.fx.RateClientIT"),
            name: "fetchesDailyRates()",
            base_ms: 350,
            behaviour: flaky(
                0.07,
                errored(
                    "org.springframework.web.client.ResourceAccessException: I/O error on GET request for \"http://localhost:$PORT/v1/rates\": Connection refused",
                ),
            ),
            expect: None,
            quarantine: None,
        },
        Notable {
            file: None,
            suite: "com.demo.payments.card.AuthorizationExpiryTest",
            classname: Some("com.demo.payments.card.AuthorizationExpiryTest"),
            name: "expiresAfterSevenDays()",
            base_ms: 12,
            behaviour: flaky(
                0.03,
                failed(
                    "org.opentest4j.AssertionFailedError: expected: <EXPIRED> but was: <AUTHORIZED>",
                ),
            ),
            expect: None,
            quarantine: None,
        },
        Notable {
            file: None,
            suite: "com.demo.payments.fx.CurrencyConverterTest",
            classname: Some("com.demo.payments.fx.CurrencyConverterTest"),
            name: "roundsJpyToWholeYen()",
            base_ms: 8,
            behaviour: Behaviour::Broken {
                from_day: 74,
                failure: failed(
                    "org.opentest4j.AssertionFailedError: expected: <1235> but was: <1234.56>",
                ),
                only_job: None,
            },
            expect: Some(Expect::Broken),
            quarantine: None,
        },
        Notable {
            file: None,
            suite: "com.demo.payments.payout.PayoutSchedulerIT",
            classname: Some("com.demo.payments.payout.PayoutSchedulerIT"),
            name: "runsOncePerDayAcrossInstances()",
            base_ms: 1600,
            behaviour: Behaviour::Flaky {
                rate: 0.25,
                failure: failed(
                    "org.opentest4j.AssertionFailedError: payout batches for today ==> expected: <1> but was: <2>",
                ),
                from_day: Some(74),
                until_day: None,
                only_job: None,
            },
            expect: Some(Expect::Flaky),
            quarantine: None,
        },
        Notable {
            file: None,
            suite: "com.demo.payments.refund.RefundFlowIT",
            classname: Some("com.demo.payments.refund.RefundFlowIT"),
            name: "partialRefundsSumToCapture()",
            base_ms: 1200,
            behaviour: Behaviour::Flaky {
                rate: 0.15,
                failure: failed(
                    "org.opentest4j.AssertionFailedError: refunded total ==> expected: <100.00> but was: <66.67>",
                ),
                from_day: None,
                until_day: Some(35),
                only_job: None,
            },
            expect: Some(Expect::Stable),
            quarantine: None,
        },
        Notable {
            file: None,
            suite: "com.demo.payments.fraud.VelocityRuleTest",
            classname: Some("com.demo.payments.fraud.VelocityRuleTest"),
            name: "blocksCardAfterTenDeclinesPerHour()",
            base_ms: 0,
            behaviour: Behaviour::Skipped,
            expect: None,
            quarantine: None,
        },
    ],
};

const CLI_TOOLS: RepoSpec = RepoSpec {
    slug: "demo/cli-tools",
    seed: 0x636c_6974_6f6f_6c03,
    stack: Stack::Cli,
    fillers: 190,
    prs_per_day: 0.75,
    main_jobs: &["test (ubuntu)", "test (macos)"],
    pr_jobs: &["test (ubuntu)"],
    retries: 2,
    first_pr: 207,
    first_run_id: 9_120_871_455,
    topics: "sync watch resume config init completions progress update login lockfile ignore conflicts windows-paths color tables msrv",
    dependencies: "clap tokio serde reqwest notify indicatif tempfile assert_cmd",
    dependabot_ecosystem: "cargo",
    outage: Outage {
        day: 55,
        job: "macos",
        share: 0.5,
        failure: failed(
            "called `Result::unwrap()` on an `Err` value: Os { code: 28, kind: StorageFull, message: \"No space left on device\" }",
        ),
    },
    notables: &[
        Notable {
            file: None,
            suite: "demo-sync::integration",
            classname: Some("demo-sync::integration"),
            name: "watch::debounces_rapid_changes",
            base_ms: 850,
            behaviour: flaky(
                0.24,
                timed_out(
                    Outcome::Failed,
                    "thread 'watch::debounces_rapid_changes' panicked at crates/demo-sync/tests/integration/watch.rs:88:9:\ntimed out waiting for file event after 2000ms",
                    2000,
                ),
            ),
            expect: Some(Expect::Flaky),
            quarantine: Some(QuarantineSpec {
                reason: "FSEvents/inotify latency on shared runners; needs a polling fallback in the test harness.",
                owner: Some("@demo/cli-maintainers"),
                days_ago: 20,
                expires_in_days: Some(10),
            }),
        },
        Notable {
            file: None,
            suite: "demo-cli::cli",
            classname: Some("demo-cli::cli"),
            name: "update::downloads_latest_release",
            base_ms: 300,
            behaviour: flaky(
                0.12,
                failed(
                    "called `Result::unwrap()` on an `Err` value: reqwest::Error { kind: Request, url: \"http://127.0.0.1:$PORT/releases/latest\", source: hyper_util::client::legacy::Error(Connect, ConnectError(\"tcp connect error\", Os { code: 111, kind: ConnectionRefused, message: \"Connection refused\" })) }",
                ),
            ),
            expect: Some(Expect::Flaky),
            quarantine: Some(QuarantineSpec {
                reason: "The mock release server is started without waiting for its listener.",
                owner: None,
                days_ago: 2,
                expires_in_days: Some(28),
            }),
        },
        Notable {
            file: None,
            suite: "demo-cli::cli",
            classname: Some("demo-cli::cli"),
            name: "progress::renders_eta_after_first_tick",
            base_ms: 60,
            behaviour: flaky(
                0.3,
                failed(
                    "thread 'progress::renders_eta_after_first_tick' panicked at crates/demo-cli/tests/cli/progress.rs:41:5:\nassertion `left == right` failed\n  left: \"ETA 0:0$D\"\n right: \"ETA 0:03\"",
                ),
            ),
            expect: Some(Expect::Flaky),
            quarantine: None,
        },
        Notable {
            file: None,
            suite: "demo-sync",
            classname: Some("demo-sync"),
            name: "fs::tests::rename_that_only_changes_case",
            base_ms: 4,
            behaviour: Behaviour::Broken {
                from_day: 60,
                failure: failed(
                    "thread 'fs::tests::rename_that_only_changes_case' panicked at crates/demo-sync/src/fs.rs:412:9:\nassertion failed: !dir.path().join(\"readme.md\").exists()",
                ),
                only_job: Some("macos"),
            },
            expect: Some(Expect::Broken),
            quarantine: None,
        },
        Notable {
            file: None,
            suite: "demo-cli::cli",
            classname: Some("demo-cli::cli"),
            name: "init::writes_default_config",
            base_ms: 35,
            behaviour: Behaviour::Broken {
                from_day: 83,
                failure: failed(
                    "thread 'init::writes_default_config' panicked at crates/demo-cli/tests/cli/init.rs:27:5:\nassertion `left == right` failed: default config changed\n  left: \"theme = \\\"auto\\\"\\n\"\n right: \"theme = \\\"dark\\\"\\n\"",
                ),
                only_job: None,
            },
            expect: Some(Expect::Broken),
            quarantine: None,
        },
        Notable {
            file: None,
            suite: "demo-cli::cli",
            classname: Some("demo-cli::cli"),
            name: "lock::second_instance_waits_for_lock",
            base_ms: 520,
            behaviour: Behaviour::Flaky {
                rate: 0.25,
                failure: timed_out(
                    Outcome::Failed,
                    "thread 'lock::second_instance_waits_for_lock' panicked at crates/demo-cli/tests/cli/lock.rs:63:14:\ntimed out after 5s waiting for the lock file",
                    5000,
                ),
                from_day: Some(76),
                until_day: None,
                only_job: None,
            },
            expect: Some(Expect::Flaky),
            quarantine: None,
        },
        Notable {
            file: None,
            suite: "demo-sync::integration",
            classname: Some("demo-sync::integration"),
            name: "resume::continues_partial_download",
            base_ms: 700,
            behaviour: Behaviour::Flaky {
                rate: 0.14,
                failure: failed(
                    "called `Result::unwrap()` on an `Err` value: Os { code: 104, kind: ConnectionReset, message: \"Connection reset by peer\" }",
                ),
                from_day: None,
                until_day: Some(40),
                only_job: None,
            },
            expect: Some(Expect::Stable),
            quarantine: None,
        },
        Notable {
            file: None,
            suite: "demo-cli",
            classname: Some("demo-cli"),
            name: "paths::tests::expands_windows_env_vars",
            base_ms: 0,
            behaviour: Behaviour::Skipped,
            expect: None,
            quarantine: None,
        },
    ],
};

// ---- The test catalogue --------------------------------------------------------------------

/// One test of a repository and how it behaves.
#[derive(Debug, Clone)]
struct TestSpec {
    key: TestKey,
    file: Option<String>,
    /// Only jobs whose name contains this run the test; `None`: every job.
    job: Option<&'static str>,
    base_ms: u64,
    behaviour: Behaviour,
    /// Added by the change of this day (absent before it).
    added_day: Option<i64>,
    /// Deleted by the change of this day.
    removed_day: Option<i64>,
    /// The verdict the scoring core should reach (checked by this module's tests only).
    #[cfg_attr(not(test), allow(dead_code))]
    expect: Option<Expect>,
    quarantine: Option<QuarantineSpec>,
}

impl TestSpec {
    fn runs_in(&self, job: &str) -> bool {
        self.job.is_none_or(|j| job.contains(j))
    }
}

fn catalogue(spec: &RepoSpec, rng: &mut Rng) -> Vec<TestSpec> {
    let mut tests: Vec<TestSpec> = spec
        .notables
        .iter()
        .map(|n| TestSpec {
            key: TestKey::from_parts(n.file, n.suite, n.classname, n.name),
            file: n.file.map(str::to_owned),
            job: job_of(spec.stack, n.suite),
            base_ms: n.base_ms,
            behaviour: n.behaviour,
            added_day: None,
            removed_day: None,
            expect: n.expect,
            quarantine: n.quarantine,
        })
        .collect();
    let candidates = match spec.stack {
        Stack::WebShop => web_shop_fillers(rng),
        Stack::Payments => payments_fillers(rng),
        Stack::Cli => cli_fillers(rng),
    };
    let mut seen: std::collections::BTreeSet<TestKey> =
        tests.iter().map(|t| t.key.clone()).collect();
    for (file, suite, classname, name, base_ms) in candidates {
        if tests.len() >= spec.notables.len() + spec.fillers {
            break;
        }
        let key = TestKey::from_parts(file.as_deref(), &suite, Some(&classname), &name);
        if !seen.insert(key.clone()) {
            continue;
        }
        // Some tests arrive during the history, a few leave it, a few are disabled.
        let roll = rng.unit();
        let (added_day, removed_day) = if roll < 0.06 {
            (Some(rng.range(15, 80)), None)
        } else if roll < 0.09 {
            (None, Some(rng.range(10, 75)))
        } else {
            (None, None)
        };
        let behaviour = if rng.chance(0.01) {
            Behaviour::Skipped
        } else {
            Behaviour::Stable
        };
        tests.push(TestSpec {
            key,
            file,
            job: job_of(spec.stack, &suite),
            base_ms,
            behaviour,
            added_day,
            removed_day,
            expect: None,
            quarantine: None,
        });
    }
    tests
}

/// Payments runs `*IT` classes in the integration job and the rest in the unit job.
fn job_of(stack: Stack, suite: &str) -> Option<&'static str> {
    match stack {
        Stack::Payments if suite.ends_with("IT") => Some("integration"),
        Stack::Payments => Some("unit"),
        Stack::WebShop | Stack::Cli => None,
    }
}

/// (file, suite, classname, name, typical duration in ms)
type Candidate = (Option<String>, String, String, String, u64);

fn web_shop_fillers(rng: &mut Rng) -> Vec<Candidate> {
    const COMPONENTS: &str = "CartDrawer CheckoutForm ProductCard ProductGallery SearchBar FilterPanel Header OrderSummary AddressForm PaymentMethodPicker WishlistButton ReviewList PriceTag Pagination LoginForm AccountMenu CouponInput ShippingEstimator Toast CategoryNav";
    const COMPONENT_CASES: &[&str] = &[
        "renders without crashing",
        "renders the empty state",
        "matches the snapshot",
        "shows a spinner while loading",
        "shows an error message when the request fails",
        "calls onSubmit with the form values",
        "disables the submit button while submitting",
        "has no axe violations",
        "supports keyboard navigation",
        "formats prices in the shopper's currency",
        "closes on Escape",
        "updates when props change",
        "debounces typing",
        "truncates long product names",
        "renders a skeleton before data arrives",
        "announces changes to screen readers",
        "restores focus when closed",
        "validates required fields",
        "resets after a successful submit",
        "tracks an analytics event on click",
    ];
    const LIBS: &[(&str, &str)] = &[
        ("src/lib/money.test.ts", "formatMoney"),
        ("src/lib/cart.test.ts", "cartReducer"),
        ("src/lib/slugify.test.ts", "slugify"),
        ("src/lib/dates.test.ts", "formatRelativeDate"),
        ("src/lib/apiClient.test.ts", "apiClient"),
        ("src/lib/featureFlags.test.ts", "featureFlags"),
        ("src/hooks/useDebounce.test.ts", "useDebounce"),
        ("src/hooks/useCart.test.ts", "useCart"),
    ];
    const LIB_CASES: &[&str] = &[
        "handles empty input",
        "keeps unicode intact",
        "is idempotent",
        "rejects invalid input",
        "round-trips through JSON",
        "uses the fallback when unset",
        "caches the result",
        "retries once on a network error",
        "rounds half to even",
        "returns a new object instead of mutating",
    ];
    const API_MODULES: &str =
        "orders products inventory customers auth search shipping coupons webhooks reports";
    const API_CASES: &[&str] = &[
        "test_list_returns_paginated_results",
        "test_get_returns_404_for_unknown_id",
        "test_create_validates_payload",
        "test_create_requires_authentication",
        "test_update_is_partial",
        "test_delete_is_soft",
        "test_filter_by_status",
        "test_sort_by_created_at",
        "test_rate_limited_after_burst",
        "test_emits_audit_event",
        "test_staff_permissions",
        "test_serializes_decimals_as_strings",
        "test_price_rounding[EUR]",
        "test_price_rounding[USD]",
        "test_price_rounding[JPY]",
    ];
    let mut out = Vec::new();
    for component in COMPONENTS.split_whitespace() {
        let count = rng.range(6, 9) as usize;
        for case in rng.sample(COMPONENT_CASES, count) {
            out.push((
                Some(format!("src/components/{component}/{component}.test.tsx")),
                (*component).to_owned(),
                (*component).to_owned(),
                (*case).to_owned(),
                rng.log_uniform(4.0, 400.0) as u64,
            ));
        }
    }
    for (file, describe) in LIBS {
        let count = rng.range(4, 7) as usize;
        for case in rng.sample(LIB_CASES, count) {
            out.push((
                Some((*file).to_owned()),
                (*describe).to_owned(),
                (*describe).to_owned(),
                (*case).to_owned(),
                rng.log_uniform(1.0, 40.0) as u64,
            ));
        }
    }
    for module in API_MODULES.split_whitespace() {
        let class = format!("Test{}Api", capitalized(module));
        let count = rng.range(8, 11) as usize;
        for case in rng.sample(API_CASES, count) {
            out.push((
                Some(format!("tests/api/test_{module}.py")),
                "pytest".to_owned(),
                format!("tests.api.test_{module}.{class}"),
                (*case).to_owned(),
                rng.log_uniform(15.0, 1500.0) as u64,
            ));
        }
    }
    out
}

fn payments_fillers(rng: &mut Rng) -> Vec<Candidate> {
    const PACKAGES: &str =
        "ledger card refund fx webhook fraud payout api idempotency audit dispute";
    const CLASSES: &[&str] = &[
        "ServiceTest",
        "ControllerTest",
        "ValidatorTest",
        "MapperTest",
        "RepositoryIT",
        "FlowIT",
    ];
    const METHODS: &[&str] = &[
        "rejectsNegativeAmount()",
        "roundsHalfEven()",
        "postsDoubleEntry()",
        "isIdempotentForSameKey()",
        "returns404ForUnknownPayment()",
        "mapsDeclineCodes()",
        "emitsEventAfterCommit()",
        "retriesOnSerializationFailure()",
        "validatesCurrencyCode()",
        "computesSchemeFees()",
        "handlesPartialRefund()",
        "rejectsRefundAboveCapture()",
        "signsWebhookPayload()",
        "verifiesWebhookSignature()",
        "persistsAuditTrail()",
        "paginatesByCursor()",
        "masksCardNumberInLogs()",
        "acceptsSupportedCurrencies(String)[1]",
        "acceptsSupportedCurrencies(String)[2]",
        "acceptsSupportedCurrencies(String)[3]",
        "serializesMoneyAsString()",
        "rejectsUnknownFields()",
    ];
    let mut out = Vec::new();
    for package in PACKAGES.split_whitespace() {
        let classes = rng.range(3, 4) as usize;
        for suffix in rng.sample(CLASSES, classes) {
            let class = format!(
                "com.demo.payments.{package}.{}{suffix}",
                capitalized(package)
            );
            let integration = suffix.ends_with("IT");
            let count = rng.range(7, 11) as usize;
            for method in rng.sample(METHODS, count) {
                let ms = if integration {
                    rng.log_uniform(120.0, 4000.0)
                } else {
                    rng.log_uniform(1.0, 250.0)
                };
                out.push((
                    None,
                    class.clone(),
                    class.clone(),
                    (*method).to_owned(),
                    ms as u64,
                ));
            }
        }
    }
    out
}

fn cli_fillers(rng: &mut Rng) -> Vec<Candidate> {
    // (nextest binary id, integration test binary, modules)
    const BINARIES: &[(&str, bool, &[&str])] = &[
        (
            "demo-cli",
            false,
            &["config", "args", "output", "paths", "update", "telemetry"],
        ),
        (
            "demo-cli::cli",
            true,
            &["init", "sync", "status", "completions", "login"],
        ),
        (
            "demo-sync",
            false,
            &["chunker", "manifest", "fs", "hash", "retry"],
        ),
        (
            "demo-sync::integration",
            true,
            &["watch", "resume", "conflicts", "ignore"],
        ),
        ("demo-fmt", false, &["table", "color", "width", "json"]),
    ];
    const CASES: &[&str] = &[
        "parses_env_overrides",
        "rejects_unknown_keys",
        "round_trips_through_toml",
        "handles_empty_input",
        "keeps_unicode_width",
        "respects_no_color",
        "exits_with_code_2_on_usage_error",
        "prints_help_with_examples",
        "creates_missing_directories",
        "is_idempotent",
        "follows_symlinks_only_when_asked",
        "reports_progress_to_stderr",
        "resumes_after_interrupt",
        "skips_ignored_files",
        "detects_conflicting_edits",
        "writes_atomically",
        "uses_xdg_dirs",
        "orders_output_deterministically",
        "truncates_long_paths",
        "retries_with_backoff",
    ];
    let mut out = Vec::new();
    for (binary, integration, modules) in BINARIES {
        for module in *modules {
            let count = rng.range(6, 10) as usize;
            for case in rng.sample(CASES, count) {
                let (name, ms) = if *integration {
                    (format!("{module}::{case}"), rng.log_uniform(20.0, 2500.0))
                } else {
                    (
                        format!("{module}::tests::{case}"),
                        rng.log_uniform(1.0, 60.0),
                    )
                };
                out.push((
                    None,
                    (*binary).to_owned(),
                    (*binary).to_owned(),
                    name,
                    ms as u64,
                ));
            }
        }
    }
    out
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

// ---- The timeline: pull requests, merges and the runs they trigger -------------------------

/// What a run tested: the default branch's first `base` merges, plus a pull request's own
/// commits when it is a PR run.
#[derive(Debug, Clone, Copy)]
struct Code {
    base: usize,
    pr: Option<usize>,
}

#[derive(Debug)]
struct PullRequest {
    number: i64,
    branch: String,
    opened: i64,
    /// Merges to the default branch before it was opened (its base).
    base: usize,
    /// (minute, commit) of each push.
    pushes: Vec<(i64, String)>,
    /// Its merge's index on the default branch.
    merged: Option<usize>,
}

#[derive(Debug)]
struct Merge {
    at: i64,
    sha: String,
}

#[derive(Debug)]
struct Timeline {
    prs: Vec<PullRequest>,
    merges: Vec<Merge>,
}

impl Timeline {
    /// The default branch's merge that brings the change of `day`: the first on or after it
    /// (`merges.len()`, never, when there is none).
    fn change(&self, day: i64) -> usize {
        self.merges
            .partition_point(|m| m.at < day * MINUTES_PER_DAY)
    }

    fn includes(&self, code: Code, change: usize) -> bool {
        code.base > change || code.pr.is_some_and(|p| self.prs[p].merged == Some(change))
    }
}

/// Minutes from the start of the history; nothing happens at or after `now`.
const HORIZON: i64 = HISTORY_DAYS * MINUTES_PER_DAY;

fn timeline(spec: &RepoSpec, rng: &mut Rng) -> Timeline {
    const KINDS: &[&str] = &["feat", "fix", "chore", "refactor", "test", "perf"];
    let mut prs = Vec::new();
    let mut merge_at: Vec<(i64, usize)> = Vec::new();
    let mut branches = std::collections::BTreeSet::new();
    let topics: Vec<&str> = spec.topics.split_whitespace().collect();
    let dependencies: Vec<&str> = spec.dependencies.split_whitespace().collect();
    let mut number = spec.first_pr;
    for day in 0..HISTORY_DAYS {
        // Weekends fall so that the last two days of the history are working days.
        let weekend = matches!(day % 7, 2 | 3);
        let lambda = if weekend {
            spec.prs_per_day * 0.1
        } else {
            spec.prs_per_day
        };
        let mut opened_today = rng.poisson(lambda);
        // Somebody is always working on something in the last days, so the demo looks current.
        if day >= HISTORY_DAYS - 3 {
            opened_today = opened_today.max(1);
        }
        for _ in 0..opened_today {
            number += rng.range(1, 3);
            let opened = day * MINUTES_PER_DAY + rng.range(7 * 60 + 30, 18 * 60);
            let dependabot = rng.chance(0.12);
            let mut branch = if dependabot {
                format!(
                    "dependabot/{}/{}-{}.{}.{}",
                    spec.dependabot_ecosystem,
                    rng.pick(&dependencies),
                    rng.range(1, 9),
                    rng.range(0, 30),
                    rng.range(0, 12)
                )
            } else {
                format!(
                    "{}/{}-{}",
                    rng.pick(KINDS),
                    rng.pick(&topics),
                    rng.pick(&topics)
                )
            };
            if branches.contains(&branch) {
                branch = format!("{branch}-{number}");
            }
            branches.insert(branch.clone());
            let push_count = if dependabot {
                1
            } else {
                1 + (rng.unit() * rng.unit() * 4.0) as usize
            };
            let mut pushes = Vec::with_capacity(push_count);
            let mut at = opened + rng.range(1, 15);
            for i in 0..push_count {
                if i > 0 {
                    at += rng.range(35, 26 * 60);
                }
                let sha = rng.hex(40);
                if at < HORIZON {
                    pushes.push((at, sha));
                }
            }
            let merges = rng.chance(if dependabot { 0.9 } else { 0.85 });
            let merged_at = at + rng.range(25, 30 * 60);
            if merges && merged_at < HORIZON && !pushes.is_empty() {
                merge_at.push((merged_at, prs.len()));
            }
            if !pushes.is_empty() {
                prs.push(PullRequest {
                    number,
                    branch,
                    opened,
                    base: 0,
                    pushes,
                    merged: None,
                });
            }
        }
    }
    merge_at.sort_unstable();
    let merges: Vec<Merge> = merge_at
        .iter()
        .enumerate()
        .map(|(index, &(at, pr))| {
            prs[pr].merged = Some(index);
            Merge {
                at,
                sha: rng.hex(40),
            }
        })
        .collect();
    for pr in &mut prs {
        pr.base = merges.partition_point(|m| m.at < pr.opened);
    }
    Timeline { prs, merges }
}

/// A CI workflow run: a push to a pull request or a merge to the default branch.
#[derive(Debug)]
struct Trigger {
    at: i64,
    sha: String,
    branch: String,
    pr_number: Option<i64>,
    code: Code,
    default_branch: bool,
}

fn triggers(timeline: &Timeline) -> Vec<Trigger> {
    let mut out = Vec::new();
    for (index, pr) in timeline.prs.iter().enumerate() {
        for (at, sha) in &pr.pushes {
            out.push(Trigger {
                at: *at,
                sha: sha.clone(),
                branch: pr.branch.clone(),
                pr_number: Some(pr.number),
                code: Code {
                    base: pr.base,
                    pr: Some(index),
                },
                default_branch: false,
            });
        }
    }
    for (index, merge) in timeline.merges.iter().enumerate() {
        out.push(Trigger {
            at: merge.at,
            sha: merge.sha.clone(),
            branch: "main".to_owned(),
            pr_number: None,
            code: Code {
                base: index + 1,
                pr: None,
            },
            default_branch: true,
        });
    }
    out.sort_by(|a, b| (a.at, &a.sha).cmp(&(b.at, &b.sha)));
    out
}

// ---- Running the tests ---------------------------------------------------------------------

/// A test's behaviour with its days resolved to merges.
#[derive(Debug, Clone, Copy)]
struct Resolved {
    added: Option<usize>,
    removed: Option<usize>,
    from: Option<usize>,
    until: Option<usize>,
}

/// One job's result: the run's rows, whether it failed, and whether a broken test (rather than
/// only flaky ones) made it fail.
#[derive(Debug)]
struct JobResult {
    run: DemoRun,
    failed: bool,
    broken: bool,
}

/// Builds one repository (and, for the tests, the catalogue behind it).
fn build_repo(spec: &RepoSpec, now: OffsetDateTime) -> (DemoRepo, Vec<TestSpec>) {
    // Separate streams, so that changing the catalogue does not reshuffle the timeline.
    let tests = catalogue(spec, &mut Rng::at(&[spec.seed, SALT_CATALOGUE]));
    let timeline = timeline(spec, &mut Rng::at(&[spec.seed, SALT_TIMELINE]));
    let mut ids = Rng::at(&[spec.seed, SALT_RUN_IDS]);
    let triggers = triggers(&timeline);
    let resolved: Vec<Resolved> = tests
        .iter()
        .map(|t| {
            let (from, until) = match t.behaviour {
                Behaviour::Flaky {
                    from_day,
                    until_day,
                    ..
                } => (
                    from_day.map(|d| timeline.change(d)),
                    until_day.map(|d| timeline.change(d)),
                ),
                Behaviour::Broken { from_day, .. } => (Some(timeline.change(from_day)), None),
                Behaviour::Stable | Behaviour::Skipped => (None, None),
            };
            Resolved {
                added: t.added_day.map(|d| timeline.change(d)),
                removed: t.removed_day.map(|d| timeline.change(d)),
                from,
                until,
            }
        })
        .collect();
    let outage_trigger = triggers
        .iter()
        .position(|t| t.default_branch && t.at >= spec.outage.day * MINUTES_PER_DAY);

    let start = now - Duration::days(HISTORY_DAYS);
    let mut runs = Vec::new();
    let mut run_id = spec.first_run_id;
    for (index, trigger) in triggers.iter().enumerate() {
        run_id += ids.range(2_000, 60_000) as u64;
        let jobs = if trigger.default_branch {
            spec.main_jobs
        } else {
            spec.pr_jobs
        };
        for (job_index, job) in jobs.iter().enumerate() {
            let mut decide = Rng::at(&[spec.seed, SALT_JOB, run_id, job_index as u64]);
            let macos = job.contains("macos");
            let queued = if macos {
                decide.range(3, 14)
            } else {
                decide.range(1, 4)
            };
            let mut started = trigger.at + queued;
            let outage = outage_trigger == Some(index) && job.contains(spec.outage.job);
            for attempt in 1..=3u32 {
                let minutes = decide.range(4, 11) + if macos { 6 } else { 0 };
                if started + minutes > HORIZON {
                    break;
                }
                let context = RunContext {
                    spec,
                    tests: &tests,
                    resolved: &resolved,
                    timeline: &timeline,
                    trigger,
                    job,
                    job_index,
                    run_id,
                    attempt,
                    outage: outage && attempt == 1,
                };
                let mut result = run_job(&context);
                result.run.run.started_at = start + Duration::minutes(started);
                result.run.run.received_at = start + Duration::minutes(started + minutes);
                let (failed, broken) = (result.failed, result.broken);
                runs.push(result.run);
                // People re-run a failed job when the failure looks unrelated to their change;
                // a test broken by the code keeps failing, so they mostly stop trying.
                let rerun = if !failed || attempt == 3 {
                    0.0
                } else if outage && attempt == 1 {
                    1.0
                } else if broken {
                    0.06
                } else if attempt == 1 {
                    0.6
                } else {
                    0.3
                };
                let mut roll = Rng::at(&[
                    spec.seed,
                    SALT_RERUN,
                    run_id,
                    job_index as u64,
                    u64::from(attempt),
                ]);
                if !roll.chance(rerun) {
                    break;
                }
                started += minutes + roll.range(15, 120);
            }
        }
    }
    runs.sort_by(|a, b| {
        (a.run.started_at, &a.run.run_id, a.run.attempt, &a.run.job).cmp(&(
            b.run.started_at,
            &b.run.run_id,
            b.run.attempt,
            &b.run.job,
        ))
    });

    let quarantine = tests
        .iter()
        .filter_map(|t| {
            t.quarantine.map(|q| DemoQuarantine {
                key: t.key.clone(),
                reason: q.reason.to_owned(),
                owner: q.owner.map(str::to_owned),
                days_ago: q.days_ago,
                expires_in_days: q.expires_in_days,
            })
        })
        .collect();
    (
        DemoRepo {
            slug: spec.slug.to_owned(),
            runs,
            quarantine,
        },
        tests,
    )
}

#[derive(Debug)]
struct RunContext<'a> {
    spec: &'a RepoSpec,
    tests: &'a [TestSpec],
    resolved: &'a [Resolved],
    timeline: &'a Timeline,
    trigger: &'a Trigger,
    job: &'a str,
    job_index: usize,
    run_id: u64,
    attempt: u32,
    outage: bool,
}

/// Runs one job (one attempt of it): every test present in the code and run by the job.
fn run_job(cx: &RunContext<'_>) -> JobResult {
    let code = cx.trigger.code;
    let includes = |change: usize| cx.timeline.includes(code, change);
    let macos = cx.job.contains("macos");
    let mut tests = Vec::new();
    let mut executions = Vec::new();
    let (mut failed, mut broken) = (false, false);
    for (index, (test, resolved)) in cx.tests.iter().zip(cx.resolved).enumerate() {
        let present =
            resolved.added.is_none_or(includes) && resolved.removed.is_none_or(|r| !includes(r));
        if !present || !test.runs_in(cx.job) {
            continue;
        }
        let position = tests.len();
        tests.push(NewTestCase {
            key: test.key.clone(),
            file: test.file.clone(),
        });
        // Each execution's luck and timing depend only on where it is, not on what ran before.
        let draw = |salt: u64| {
            Rng::at(&[
                salt,
                cx.spec.seed,
                cx.run_id,
                cx.job_index as u64,
                u64::from(cx.attempt),
                index as u64,
            ])
        };
        let mut timing = draw(SALT_DURATION);
        let duration = |timing: &mut Rng| {
            let mut ms = test.base_ms as f64 * (0.75 + 0.5 * timing.unit());
            if macos {
                ms *= 1.35;
            }
            if timing.chance(0.02) {
                ms *= 2.0 + 2.0 * timing.unit();
            }
            ms.round() as u64
        };
        if matches!(test.behaviour, Behaviour::Skipped) {
            executions.push(NewExecution {
                test: position,
                attempt: 1,
                outcome: Outcome::Skipped,
                duration_ms: Some(0),
                signature: None,
                message: None,
            });
            continue;
        }
        let in_outage = cx.outage
            && Rng::at(&[cx.spec.seed, SALT_OUTAGE, index as u64]).chance(cx.spec.outage.share);
        // (failure, chance per attempt, whether the code broke it)
        let hazard: Option<(Failure, f64, bool)> = if in_outage {
            Some((cx.spec.outage.failure, 1.0, false))
        } else {
            match test.behaviour {
                Behaviour::Flaky {
                    rate,
                    failure,
                    only_job,
                    ..
                } if resolved.from.is_none_or(includes)
                    && !resolved.until.is_some_and(includes)
                    && only_job.is_none_or(|j| cx.job.contains(j)) =>
                {
                    Some((failure, rate, false))
                }
                Behaviour::Broken {
                    failure, only_job, ..
                } if resolved.from.is_some_and(includes)
                    && only_job.is_none_or(|j| cx.job.contains(j)) =>
                {
                    Some((failure, 1.0, true))
                }
                _ => None,
            }
        };
        let mut luck = draw(SALT_OUTCOME);
        for attempt in 1..=1 + cx.spec.retries {
            let failure = hazard.filter(|&(_, p, _)| luck.chance(p));
            match failure {
                Some((failure, _, by_code)) => {
                    let message = cut(render(failure.template, &mut luck));
                    let duration_ms = match failure.timeout_ms {
                        Some(limit) => limit + timing.range(3, 150) as u64,
                        None => duration(&mut timing),
                    };
                    executions.push(NewExecution {
                        test: position,
                        attempt,
                        outcome: failure.outcome,
                        duration_ms: Some(duration_ms),
                        signature: Some(signature(&message)),
                        message: Some(message),
                    });
                    if attempt == 1 + cx.spec.retries {
                        failed = true;
                        broken |= by_code;
                    }
                }
                None => {
                    executions.push(NewExecution {
                        test: position,
                        attempt,
                        outcome: Outcome::Passed,
                        duration_ms: Some(duration(&mut timing)),
                        signature: None,
                        message: None,
                    });
                    break;
                }
            }
        }
    }
    let run_id = cx.run_id.to_string();
    JobResult {
        run: DemoRun {
            run: NewRun {
                commit: Some(cx.trigger.sha.clone()),
                branch: Some(cx.trigger.branch.clone()),
                pr_number: cx.trigger.pr_number,
                report_digest: digest(cx.spec.slug, &run_id, cx.attempt, cx.job),
                run_id,
                attempt: cx.attempt,
                job: cx.job.to_owned(),
                source: Source::Demo,
                // Set by the caller, which knows the clock.
                started_at: OffsetDateTime::UNIX_EPOCH,
                received_at: OffsetDateTime::UNIX_EPOCH,
            },
            tests,
            executions,
        },
        failed,
        broken,
    }
}

/// Fills a template's placeholders: `$MS` (a duration, the same one each time it appears),
/// `$PORT`, `$N`, `$D` (one digit), `$PID` and `$HEX` (fresh each time).
fn render(template: &str, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    let mut ms = None;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let len = after.bytes().take_while(u8::is_ascii_uppercase).count();
        let value = match &after[..len] {
            "MS" => Some(
                ms.get_or_insert_with(|| rng.range(260, 2400).to_string())
                    .clone(),
            ),
            "PORT" => Some(rng.range(32_768, 60_999).to_string()),
            "N" => Some(rng.range(1, 99_999).to_string()),
            "D" => Some(rng.range(4, 9).to_string()),
            "PID" => Some(rng.range(1_000, 65_000).to_string()),
            "HEX" => Some(rng.hex(12)),
            _ => None,
        };
        match value {
            Some(v) => {
                out.push_str(&v);
                rest = &after[len..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Cuts a message to what the store keeps, at a character boundary.
fn cut(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

/// The run's report digest: unique per repository, run, attempt and job, and independent of
/// `now`, so seeding twice stores each run once.
fn digest(slug: &str, run_id: &str, attempt: u32, job: &str) -> String {
    let mut hasher = Sha256::new();
    for part in ["flakeguard-demo", slug, run_id, &attempt.to_string(), job] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashSet};

    use flakeguard_core::{Execution, Policy, Run, TestHistory, score_all};
    use flakeguard_store::RepoSlug;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-03-14 15:30:00 UTC);

    /// A repository's demo history as the scoring engine reads it.
    fn core_history(repo: &DemoRepo) -> (Vec<Run>, Vec<TestHistory>) {
        let mut runs = Vec::new();
        let mut tests: Vec<TestHistory> = Vec::new();
        let mut index: BTreeMap<TestKey, usize> = BTreeMap::new();
        for (r, demo) in repo.runs.iter().enumerate() {
            runs.push(Run {
                run_id: demo.run.run_id.clone(),
                attempt: demo.run.attempt,
                commit: demo.run.commit.clone(),
                branch: demo.run.branch.clone(),
                job: Some(demo.run.job.clone()),
                started_at: demo.run.started_at,
            });
            for e in &demo.executions {
                let case = &demo.tests[e.test];
                let t = *index.entry(case.key.clone()).or_insert_with(|| {
                    tests.push(TestHistory {
                        key: case.key.clone(),
                        file: case.file.clone(),
                        executions: Vec::new(),
                    });
                    tests.len() - 1
                });
                tests[t].executions.push(Execution {
                    run: r as u32,
                    attempt: e.attempt,
                    outcome: e.outcome,
                    duration_ms: e.duration_ms,
                    signature: e.signature,
                });
            }
        }
        (runs, tests)
    }

    #[test]
    fn demo_is_deterministic() {
        assert_eq!(generate(NOW), generate(NOW));
    }

    #[test]
    fn demo_follows_now_and_keeps_ids_and_digests() {
        let a = generate(NOW);
        let later = NOW + Duration::days(3) + Duration::minutes(7);
        let b = generate(later);
        for (ra, rb) in a.repos.iter().zip(&b.repos) {
            assert_eq!(ra.runs.len(), rb.runs.len());
            for (x, y) in ra.runs.iter().zip(&rb.runs) {
                assert_eq!(x.run.run_id, y.run.run_id);
                assert_eq!(x.run.report_digest, y.run.report_digest);
                assert_eq!(y.run.started_at - x.run.started_at, later - NOW);
                assert_eq!(x.executions, y.executions);
            }
        }
        for repo in &a.repos {
            for run in &repo.runs {
                assert!(run.run.started_at >= NOW - Duration::days(HISTORY_DAYS));
                assert!(run.run.started_at < run.run.received_at);
                assert!(run.run.received_at <= NOW, "{:?}", run.run);
            }
            let last = repo.runs.last().unwrap().run.started_at;
            assert!(NOW - last < Duration::days(2), "{}: stale", repo.slug);
        }
    }

    #[test]
    fn demo_rows_are_well_formed() {
        let data = generate(NOW);
        assert_eq!(data.repos.len(), 3);
        let mut digests = HashSet::new();
        for repo in &data.repos {
            RepoSlug::parse(&repo.slug).unwrap();
            let mut idempotency = HashSet::new();
            for run in &repo.runs {
                let r = &run.run;
                assert_eq!(r.source, Source::Demo);
                assert!(digests.insert(r.report_digest.clone()), "digest repeats");
                assert_eq!(r.report_digest.len(), 64);
                assert!(idempotency.insert((r.run_id.clone(), r.attempt, r.job.clone())));
                assert_eq!(r.commit.as_deref().map(str::len), Some(40));
                assert_eq!(r.branch.as_deref() == Some("main"), r.pr_number.is_none());
                let keys: HashSet<&TestKey> = run.tests.iter().map(|t| &t.key).collect();
                assert_eq!(keys.len(), run.tests.len(), "a test listed twice in a run");
                let mut attempts: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
                for e in &run.executions {
                    assert!(e.test < run.tests.len(), "execution index out of range");
                    attempts.entry(e.test).or_default().push(e.attempt);
                    match (&e.message, e.signature) {
                        (Some(m), Some(s)) => {
                            assert!(e.outcome.is_failure());
                            assert!(m.len() <= MAX_MESSAGE_BYTES && !m.contains('$'), "{m}");
                            assert_eq!(s, signature(m));
                        }
                        (None, None) => assert!(!e.outcome.is_failure()),
                        _ => panic!("message and signature go together: {e:?}"),
                    }
                }
                assert_eq!(attempts.len(), run.tests.len(), "a test without executions");
                for list in attempts.values() {
                    assert_eq!(*list, (1..=list.len() as u32).collect::<Vec<_>>());
                }
            }
            // Every later attempt re-runs an earlier one of the same run, job and commit.
            for run in repo.runs.iter().filter(|r| r.run.attempt > 1) {
                assert!(repo.runs.iter().any(|p| p.run.run_id == run.run.run_id
                    && p.run.job == run.run.job
                    && p.run.attempt == run.run.attempt - 1
                    && p.run.commit == run.run.commit
                    && p.run.started_at < run.run.started_at));
            }
        }
    }

    #[test]
    fn demo_has_the_promised_variety_and_size() {
        let data = generate(NOW);
        let (mut total_runs, mut total_executions) = (0, 0);
        for repo in &data.repos {
            let runs = &repo.runs;
            let executions: usize = runs.iter().map(|r| r.executions.len()).sum();
            total_runs += runs.len();
            total_executions += executions;
            let keys: BTreeSet<&TestKey> = runs
                .iter()
                .flat_map(|r| r.tests.iter().map(|t| &t.key))
                .collect();
            assert!(
                (150..=400).contains(&keys.len()),
                "{}: {} tests",
                repo.slug,
                keys.len()
            );
            let jobs: BTreeSet<&str> = runs.iter().map(|r| r.run.job.as_str()).collect();
            assert!(jobs.len() >= 2, "{}: jobs {jobs:?}", repo.slug);
            let reruns = runs.iter().filter(|r| r.run.attempt > 1).count();
            let failures = runs
                .iter()
                .flat_map(|r| &r.executions)
                .filter(|e| e.outcome.is_failure())
                .count();
            let retried_runs = runs
                .iter()
                .filter(|r| r.executions.iter().any(|e| e.attempt > 1))
                .count();
            eprintln!(
                "{}: {} runs ({} on main, {} re-run attempts, {} with in-run retries), {} tests, {executions} executions, {failures} failures",
                repo.slug,
                runs.len(),
                runs.iter().filter(|r| r.run.pr_number.is_none()).count(),
                reruns,
                retried_runs,
                keys.len(),
            );
            assert!(reruns >= 3, "{}: {reruns} re-runs", repo.slug);
            let prs: BTreeSet<i64> = runs.iter().filter_map(|r| r.run.pr_number).collect();
            assert!(prs.len() >= 30, "{}: {} PRs", repo.slug, prs.len());
            let main = runs.iter().filter(|r| r.run.pr_number.is_none()).count();
            assert!(main >= 60, "{}: {main} default-branch runs", repo.slug);
            // Test sets change: some tests appear late, some disappear early.
            let first: BTreeSet<&TestKey> = runs[..20]
                .iter()
                .flat_map(|r| r.tests.iter().map(|t| &t.key))
                .collect();
            let last: BTreeSet<&TestKey> = runs[runs.len() - 20..]
                .iter()
                .flat_map(|r| r.tests.iter().map(|t| &t.key))
                .collect();
            assert!(
                last.difference(&first).count() >= 3,
                "{}: no added tests",
                repo.slug
            );
            assert!(
                first.difference(&last).count() >= 3,
                "{}: no removed tests",
                repo.slug
            );
            assert!(
                runs.iter()
                    .flat_map(|r| &r.executions)
                    .any(|e| e.outcome == Outcome::Skipped)
            );
            // nextest reports every failure as a failure; the others also have errors.
            assert_eq!(
                runs.iter()
                    .flat_map(|r| &r.executions)
                    .any(|e| e.outcome == Outcome::Error),
                repo.slug != "demo/cli-tools",
                "{}",
                repo.slug
            );
            assert!((2..=3).contains(&repo.quarantine.len()), "{}", repo.slug);
            for q in &repo.quarantine {
                assert!(keys.contains(&q.key));
                assert!(q.days_ago > 0 && q.expires_in_days.is_none_or(|d| d > 0));
            }
        }
        // Retries inside a run exist where the runner retries.
        let retried = |slug: &str| {
            data.repos
                .iter()
                .find(|r| r.slug == slug)
                .unwrap()
                .runs
                .iter()
                .any(|r| {
                    r.executions
                        .iter()
                        .any(|e| e.attempt == 2 && e.outcome == Outcome::Passed)
                })
        };
        assert!(retried("demo/cli-tools") && retried("demo/payments-api"));
        assert!((450..=800).contains(&total_runs), "{total_runs} runs");
        assert!(total_executions <= 150_000, "{total_executions} executions");
    }

    #[test]
    fn demo_scores_as_designed() {
        for spec in REPOS {
            let (repo, catalogue) = build_repo(spec, NOW);
            let (runs, histories) = core_history(&repo);
            let scores = score_all(&runs, &histories, &Policy::default(), NOW);
            let verdict: BTreeMap<&TestKey, Status> = histories
                .iter()
                .zip(&scores)
                .map(|(h, s)| (&h.key, s.status))
                .collect();
            let count = |status: Status| scores.iter().filter(|s| s.status == status).count();
            let (flaky, broken, stable, unknown) = (
                count(Status::Flaky),
                count(Status::Broken),
                count(Status::Stable),
                count(Status::InsufficientData),
            );
            let executions: usize = repo.runs.iter().map(|r| r.executions.len()).sum();
            eprintln!(
                "{}: {} runs, {} tests, {executions} executions; flaky {flaky}, broken {broken}, stable {stable}, insufficient data {unknown}",
                repo.slug,
                repo.runs.len(),
                histories.len(),
            );
            for (h, s) in histories.iter().zip(&scores) {
                if matches!(s.status, Status::Flaky | Status::Broken) {
                    eprintln!("  {:7} p={:.2} {}", s.status.as_str(), s.probability, h.key);
                }
            }
            assert!(flaky >= 1 && broken >= 1, "{}", repo.slug);
            assert!(
                stable * 10 >= histories.len() * 8,
                "{}: only {stable} of {} stable",
                repo.slug,
                histories.len()
            );
            for test in &catalogue {
                let Some(&status) = verdict.get(&test.key) else {
                    panic!("{}: {} never ran", repo.slug, test.key);
                };
                match (test.behaviour, test.expect) {
                    (_, Some(expect)) => {
                        let want = match expect {
                            Expect::Flaky => Status::Flaky,
                            Expect::Broken => Status::Broken,
                            Expect::Stable => Status::Stable,
                        };
                        assert_eq!(status, want, "{}: {}", repo.slug, test.key);
                    }
                    // Stable tests never fail except in outages, which must not count.
                    (Behaviour::Stable, None) => assert!(
                        matches!(status, Status::Stable | Status::InsufficientData),
                        "{}: {} is {status:?}",
                        repo.slug,
                        test.key
                    ),
                    (Behaviour::Skipped, None) => {
                        assert_eq!(status, Status::InsufficientData, "{}", test.key)
                    }
                    _ => {}
                }
                if test.quarantine.is_some() {
                    assert_eq!(status, Status::Flaky, "quarantined {}", test.key);
                }
            }
        }
    }
}
