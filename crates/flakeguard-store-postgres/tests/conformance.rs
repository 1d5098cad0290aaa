//! The shared `Store` conformance suite, run against PostgreSQL: every check gets a fresh
//! database of its own (see `support`), dropped afterwards.

mod support;

use support::{TestStore, store};

flakeguard_store::conformance_tests!(store);

#[test]
fn database_urls_are_rewritten_to_the_test_database() {
    assert_eq!(
        support::with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        support::with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
        "postgresql://u:p@h/x?sslmode=disable"
    );
    assert_eq!(
        support::with_database("postgres://h:5432", "x"),
        "postgres://h:5432/x"
    );
    let _: Option<TestStore> = None;
}
