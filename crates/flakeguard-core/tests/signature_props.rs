//! Properties of failure signatures on generated input: normalization never panics, leaves no
//! digit behind and collapses whitespace; messages that differ only in their variable parts
//! (numbers, durations, addresses, identifiers, times, paths, temporary names) share a signature.

use flakeguard_core::{normalize_message, signature};
use proptest::prelude::*;

fn messages() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        // Message-like text, where the scanner's rules actually fire.
        "[a-zA-Z0-9 :/._\\-\\\\()=,'\"@x\n\t]{0,120}",
        "(at|in|timeout|expected) [0-9a-f:/.\\-TZ ]{0,60}( after [0-9]{1,5}(ms|s| seconds))?",
    ]
}

/// One part of a message: fixed text, or a kind of variable part rendered from a seed.
#[derive(Debug, Clone)]
enum Part {
    Word(&'static str),
    Variable(u8),
}

fn render(part: &Part, seed: u64) -> String {
    let n = seed % 100_000;
    match part {
        Part::Word(w) => (*w).to_owned(),
        Part::Variable(kind) => match kind % 9 {
            0 => format!("{n}"),
            1 => format!("{}ms", n + 1),
            2 => format!("0x{:x}", seed | 1),
            3 => format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                seed as u32,
                seed as u16,
                (seed >> 16) as u16,
                (seed >> 32) as u16,
                seed & 0xffff_ffff_ffff
            ),
            4 => format!(
                "2026-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                1 + n % 12,
                1 + n % 28,
                n % 24,
                n % 60,
                n % 60
            ),
            5 => format!("{:02}:{:02}:{:02}", n % 24, n % 60, (n / 60) % 60),
            6 => format!("/tmp/tmp{n}x{}", seed % 7),
            7 => format!("/home/runner/work/{n}/src/db.rs:{}", n % 400),
            _ => format!("127.0.0.1:{}", 1024 + n % 60_000),
        },
    }
}

fn parts() -> impl Strategy<Value = Vec<Part>> {
    let word = prop::sample::select(vec![
        "timeout",
        "expected",
        "but",
        "got",
        "connection",
        "refused",
        "at",
        "in",
        "panicked",
        "Error:",
        "(",
        ")",
    ])
    .prop_map(Part::Word);
    let variable = any::<u8>().prop_map(Part::Variable);
    prop::collection::vec(prop_oneof![word, variable], 1..12)
}

proptest! {
    #[test]
    fn normalization_leaves_no_digit_and_no_stray_whitespace(msg in messages()) {
        let n = normalize_message(&msg);
        prop_assert!(!n.bytes().any(|b| b.is_ascii_digit()), "{msg:?} -> {n:?}");
        prop_assert_eq!(n.trim(), n.as_str());
        prop_assert!(!n.contains("  "), "{:?}", n);
        prop_assert!(!n.contains(['\n', '\t', '\r']), "{:?}", n);
    }

    #[test]
    fn messages_differing_only_in_variable_parts_share_a_signature(
        parts in parts(),
        a in any::<u64>(),
        b in any::<u64>(),
    ) {
        let first: Vec<String> = parts.iter().enumerate().map(|(i, p)| render(p, a.rotate_left(i as u32))).collect();
        let second: Vec<String> = parts.iter().enumerate().map(|(i, p)| render(p, b.rotate_left(i as u32))).collect();
        let (first, second) = (first.join(" "), second.join(" "));
        prop_assert_eq!(
            signature(&first),
            signature(&second),
            "{:?} -> {:?} vs {:?} -> {:?}",
            first,
            normalize_message(&first),
            second,
            normalize_message(&second)
        );
    }
}
