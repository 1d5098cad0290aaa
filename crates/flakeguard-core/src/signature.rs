//! Failure signatures: one failure message reduced to what stays the same each time the same
//! problem happens, and hashed, so related failures group together across tests and runs.
//!
//! [`normalize_message`] replaces the parts of a message that change from one occurrence to
//! the next (times, numbers, addresses, identifiers, paths, ports, temporary names, durations)
//! with placeholders, and collapses whitespace. [`signature`] hashes the result with FNV-1a 64,
//! written here so the value is the same on every platform and in every version: signatures
//! are stored and compared across releases, so never `std`'s `DefaultHasher`.
//!
//! The scanner is hand-written (no regex engine): it runs once per failure during ingestion
//! and makes a single pass over the message.

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The stable signature of a failure message: FNV-1a 64 of [`normalize_message`].
pub fn signature(msg: &str) -> u64 {
    fnv1a(normalize_message(msg).as_bytes())
}

/// A signature as 16 lowercase hexadecimal digits.
pub fn signature_hex(sig: u64) -> String {
    format!("{sig:016x}")
}

pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// Replaces the variable parts of a failure message with placeholders.
///
/// | In the message | Becomes |
/// |---|---|
/// | `2024-05-01T10:22:03.123Z`, `2024-05-01 10:22:03+02:00`, `2024-05-01` | `<ts>` |
/// | `10:22:03`, `10:22:03.5` | `<time>` |
/// | `0x7ffd5a2c` | `<addr>` |
/// | `123e4567-e89b-12d3-a456-426614174000` | `<uuid>` |
/// | hexadecimal words of 7+ characters with digits and letters (commit and content hashes) | `<hash>` |
/// | `/home/ci/src/app/db.rs`, `C:\work\db.cs`, `src/db.rs` | the base name, normalized: `db.rs` |
/// | `/tmp/xyz123`, `tmpab12cd`, `C:\Users\me\AppData\Local\Temp\x1` | `<tmp>` |
/// | `1500ms`, `2.5 s`, `30 seconds` | `<dur>` |
/// | any other number (`42`, `:8080`, `3.14`, `worker7`) | `<n>` (`:<n>`, `worker<n>`) |
/// | runs of whitespace (newlines, tabs, Unicode spaces) | one space, trimmed |
///
/// Case is kept. Non-ASCII text is copied unchanged.
pub fn normalize_message(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    normalize_into(msg, &mut out);
    out
}

fn normalize_into(msg: &str, out: &mut String) {
    let b = msg.as_bytes();
    let mut i = 0;
    let mut pending_space = false;
    while i < b.len() {
        let c = b[i];
        // `i` is always at a character boundary: it only ever moves past ASCII bytes or whole
        // characters.
        let ch = if c.is_ascii() {
            char::from(c)
        } else {
            msg[i..]
                .chars()
                .next()
                .unwrap_or(char::REPLACEMENT_CHARACTER)
        };
        // No-break and other Unicode spaces collapse like ASCII ones.
        if ch.is_whitespace() {
            pending_space = true;
            i += ch.len_utf8();
            continue;
        }
        if pending_space {
            if !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
        }
        let prev = i.checked_sub(1).map(|p| b[p]);
        // Placeholders only start at a word boundary, so `abc123` is one word, not `abc` + number.
        if !prev.is_some_and(|p| p.is_ascii_alphanumeric())
            && let Some(end) = replace_token(msg, i, prev, out)
        {
            i = end;
            continue;
        }
        out.push(ch);
        i += ch.len_utf8();
    }
}

/// Writes the placeholder for the token starting at `i`, if one starts there, and returns
/// where the token ends.
fn replace_token(msg: &str, i: usize, prev: Option<u8>, out: &mut String) -> Option<usize> {
    let b = msg.as_bytes();
    if let Some(end) = path_at(b, i, prev) {
        write_path(&msg[i..end], out);
        return Some(end);
    }
    if let Some(end) = uuid_at(b, i) {
        out.push_str("<uuid>");
        return Some(end);
    }
    if let Some(end) = address_at(b, i) {
        out.push_str("<addr>");
        return Some(end);
    }
    if let Some(end) = iso_timestamp_at(b, i) {
        out.push_str("<ts>");
        return Some(end);
    }
    if let Some(end) = clock_at(b, i) {
        out.push_str("<time>");
        return Some(end);
    }
    if b[i].is_ascii_alphanumeric() {
        return Some(word_at(b, i, out));
    }
    None
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn digits_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

fn alnum_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_alphanumeric() {
        i += 1;
    }
    i
}

/// Exactly `n` digits at `i`, returning the end.
fn exact_digits(b: &[u8], i: usize, n: usize) -> Option<usize> {
    (i + n <= b.len() && b[i..i + n].iter().all(u8::is_ascii_digit)).then_some(i + n)
}

fn ends_word(b: &[u8], end: usize) -> bool {
    b.get(end).is_none_or(|c| !c.is_ascii_alphanumeric())
}

/// `8-4-4-4-12` hexadecimal groups.
fn uuid_at(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    for (n, len) in [8usize, 4, 4, 4, 12].into_iter().enumerate() {
        if n > 0 {
            if b.get(j) != Some(&b'-') {
                return None;
            }
            j += 1;
        }
        if j + len > b.len() || !b[j..j + len].iter().all(|&c| is_hex(c)) {
            return None;
        }
        j += len;
    }
    ends_word(b, j).then_some(j)
}

/// `0x` followed by hexadecimal digits.
fn address_at(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'0') || !matches!(b.get(i + 1), Some(b'x' | b'X')) {
        return None;
    }
    let mut j = i + 2;
    while j < b.len() && is_hex(b[j]) {
        j += 1;
    }
    (j > i + 2).then_some(j)
}

/// `YYYY-MM-DD`, optionally followed by `T` or a space and `hh:mm[:ss[.fff]]`, optionally
/// followed by `Z` or a `±hh[:]mm` offset.
fn iso_timestamp_at(b: &[u8], i: usize) -> Option<usize> {
    let mut j = exact_digits(b, i, 4)?;
    for _ in 0..2 {
        if b.get(j) != Some(&b'-') {
            return None;
        }
        j = exact_digits(b, j + 1, 2)?;
    }
    if matches!(b.get(j), Some(b'T' | b' '))
        && let Some(end) = hh_mm(b, j + 1)
    {
        j = end;
        if b.get(j) == Some(&b':')
            && let Some(end) = exact_digits(b, j + 1, 2)
        {
            j = end;
            j = fraction_end(b, j);
        }
        if b.get(j) == Some(&b'Z') {
            j += 1;
        } else if matches!(b.get(j), Some(b'+' | b'-'))
            && let Some(end) = exact_digits(b, j + 1, 2)
        {
            let after_colon = if b.get(end) == Some(&b':') {
                end + 1
            } else {
                end
            };
            if let Some(end) = exact_digits(b, after_colon, 2) {
                j = end;
            }
        }
    }
    ends_word(b, j).then_some(j)
}

fn hh_mm(b: &[u8], i: usize) -> Option<usize> {
    let j = exact_digits(b, i, 2)?;
    if b.get(j) != Some(&b':') {
        return None;
    }
    exact_digits(b, j + 1, 2)
}

/// `.123` after a number, if present.
fn fraction_end(b: &[u8], j: usize) -> usize {
    if b.get(j) == Some(&b'.') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
        digits_end(b, j + 1)
    } else {
        j
    }
}

/// `h:mm:ss` or `hh:mm:ss`, optionally with a fraction.
fn clock_at(b: &[u8], i: usize) -> Option<usize> {
    let hours_end = digits_end(b, i);
    if !(1..=2).contains(&(hours_end - i)) || b.get(hours_end) != Some(&b':') {
        return None;
    }
    let j = exact_digits(b, hours_end + 1, 2)?;
    if b.get(j) != Some(&b':') {
        return None;
    }
    let j = fraction_end(b, exact_digits(b, j + 1, 2)?);
    (ends_word(b, j) && b.get(j).is_none_or(|&c| c != b':')).then_some(j)
}

const DURATION_UNITS: &[&str] = &[
    "ns", "us", "ms", "s", "sec", "secs", "second", "seconds", "m", "min", "mins", "minute",
    "minutes", "h", "hr", "hrs", "hour", "hours", "d", "day", "days",
];

fn is_duration_unit(word: &[u8]) -> bool {
    DURATION_UNITS
        .iter()
        .any(|unit| unit.as_bytes().eq_ignore_ascii_case(word))
}

/// One alphanumeric word at a boundary: a hash, a temporary name, a number or duration, or a
/// word whose digit runs become `<n>`.
fn word_at(b: &[u8], i: usize, out: &mut String) -> usize {
    let end = alnum_end(b, i);
    let word = &b[i..end];
    let has_digit = word.iter().any(u8::is_ascii_digit);
    if word.len() >= 7
        && has_digit
        && word.iter().all(|&c| is_hex(c))
        && word.iter().any(u8::is_ascii_alphabetic)
    {
        out.push_str("<hash>");
        return end;
    }
    if word.len() >= 3 && word[..3].eq_ignore_ascii_case(b"tmp") {
        // Temporary names (`tmpab12cd`, `tmp_x8Fq2`): `tmp` and at least four more name
        // characters, which no ordinary word (`tmpdir`) has.
        let mut j = i + 3;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'-') {
            j += 1;
        }
        if j - i >= 7 {
            out.push_str("<tmp>");
            return j;
        }
    }
    if word[0].is_ascii_digit() {
        let number_end = fraction_end(b, digits_end(b, i));
        let suffix_end = alnum_end(b, number_end);
        let suffix = &b[number_end..suffix_end];
        if !suffix.is_empty() && is_duration_unit(suffix) {
            out.push_str("<dur>");
            return suffix_end;
        }
        if suffix.is_empty() {
            // `30 seconds`: a number and a unit word.
            if b.get(number_end) == Some(&b' ') {
                let unit_end = alnum_end(b, number_end + 1);
                if unit_end > number_end + 1 && is_duration_unit(&b[number_end + 1..unit_end]) {
                    out.push_str("<dur>");
                    return unit_end;
                }
            }
            out.push_str("<n>");
            return number_end;
        }
    }
    if !has_digit {
        // ASCII alphanumerics only: always valid UTF-8.
        out.extend(word.iter().map(|&c| char::from(c)));
        return end;
    }
    let mut j = i;
    while j < end {
        if b[j].is_ascii_digit() {
            j = digits_end(b, j);
            out.push_str("<n>");
        } else {
            out.push(char::from(b[j]));
            j += 1;
        }
    }
    end
}

fn is_path_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'.' | b'_' | b'-' | b'/' | b'\\' | b'~' | b'@' | b'+' | b'%'
        )
}

fn is_separator(c: u8) -> bool {
    c == b'/' || c == b'\\'
}

/// A file path starting at `i`: absolute (`/…`, `\…`, `~/…`, `C:\…`), explicitly relative
/// (`./…`, `../…`) or relative with a file name (`src/db.rs`) or several directories.
fn path_at(b: &[u8], i: usize, prev: Option<u8>) -> Option<usize> {
    // After `:` or `/` this is the rest of a URL or of a longer token, not a path of its own.
    if prev.is_some_and(|p| {
        !matches!(
            p,
            b' ' | b'\t'
                | b'\n'
                | b'\r'
                | b'\''
                | b'"'
                | b'`'
                | b'('
                | b'<'
                | b'['
                | b'{'
                | b'='
                | b','
                | b';'
        )
    }) {
        return None;
    }
    let drive = b.get(i).is_some_and(u8::is_ascii_alphabetic)
        && b.get(i + 1) == Some(&b':')
        && b.get(i + 2).is_some_and(|&c| is_separator(c))
        && b.get(i + 3).is_some_and(u8::is_ascii_alphanumeric);
    let mut j = if drive { i + 2 } else { i };
    while j < b.len() && is_path_char(b[j]) {
        j += 1;
    }
    let token = &b[i..j];
    let separators = token.iter().filter(|&&c| is_separator(c)).count();
    if separators == 0 || !token.iter().any(u8::is_ascii_alphanumeric) {
        return None;
    }
    let rooted = drive
        || is_separator(token[0])
        || token.starts_with(b"~/")
        || token.starts_with(b"./")
        || token.starts_with(b"../");
    let last = token
        .rsplit(|&c| is_separator(c))
        .next()
        .unwrap_or_default();
    let named_file = last.contains(&b'.') && last.iter().any(u8::is_ascii_alphabetic);
    (rooted || separators >= 2 || named_file).then_some(j)
}

/// A path becomes its normalized base name, or `<tmp>` when it names a temporary directory.
fn write_path(path: &str, out: &mut String) {
    let segments = path
        .split(['/', '\\'])
        .filter(|s| !s.is_empty() && *s != "." && *s != "..");
    let mut temp = path.starts_with("/var/folders/");
    let mut base = "";
    for segment in segments {
        temp |= segment.eq_ignore_ascii_case("tmp")
            || segment.eq_ignore_ascii_case("temp")
            || (segment.len() > 3 && segment[..3].eq_ignore_ascii_case("tmp"));
        base = segment;
    }
    let has_extension = base.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty() && ext.bytes().any(|c| c.is_ascii_alphabetic())
    });
    if base.is_empty() {
        out.push_str("<path>");
        return;
    }
    if temp && !has_extension {
        out.push_str("<tmp>");
        return;
    }
    // The base name has no separators, so this cannot recurse again into a path.
    normalize_into(base, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalize_message(s)
    }

    #[test]
    fn timestamps_and_clock_times_become_placeholders() {
        assert_eq!(n("at 2024-05-01T10:22:03.123Z failed"), "at <ts> failed");
        assert_eq!(n("at 2024-05-01 10:22:03+02:00 failed"), "at <ts> failed");
        assert_eq!(n("on 2024-05-01, retry"), "on <ts>, retry");
        assert_eq!(n("[10:22:03] boom"), "[<time>] boom");
        assert_eq!(n("at 9:05:59.25 boom"), "at <time> boom");
    }

    #[test]
    fn numbers_ports_and_durations_become_placeholders() {
        assert_eq!(
            n("expected 3 but was 4 (took 1500ms)"),
            "expected <n> but was <n> (took <dur>)"
        );
        assert_eq!(n("timed out after 30 seconds"), "timed out after <dur>");
        assert_eq!(n("timeout 2.5s"), "timeout <dur>");
        assert_eq!(
            n("connect ECONNREFUSED 127.0.0.1:5432"),
            "connect ECONNREFUSED <n>.<n>:<n>"
        );
        assert_eq!(
            n("GET http://localhost:8080/api/v1/items/42 failed"),
            "GET http://localhost:<n>/api/v<n>/items/<n> failed"
        );
        assert_eq!(n("worker7 died"), "worker<n> died");
    }

    #[test]
    fn addresses_uuids_and_hashes_become_placeholders() {
        assert_eq!(n("segfault at 0x7ffd5a2c"), "segfault at <addr>");
        assert_eq!(
            n("job 123e4567-e89b-12d3-a456-426614174000 lost"),
            "job <uuid> lost"
        );
        assert_eq!(
            n("blob da39a3ee5e6b4b0d3255bfef95601890afd80709 missing"),
            "blob <hash> missing"
        );
        assert_eq!(
            n("digest e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            "digest <hash>"
        );
        assert_eq!(n("commit abc1234 is bad"), "commit <hash> is bad");
        assert_eq!(n("deadbeef stays a word"), "deadbeef stays a word");
    }

    #[test]
    fn paths_keep_their_base_name_and_temp_names_collapse() {
        assert_eq!(
            n("panicked at /home/runner/work/app/src/db.rs:42:7"),
            "panicked at db.rs:<n>:<n>"
        );
        assert_eq!(n("at src/db.rs:42"), "at db.rs:<n>");
        assert_eq!(n(r"in C:\work\app\Db.cs:line 12"), "in Db.cs:line <n>");
        assert_eq!(n("cannot open /tmp/xyz123"), "cannot open <tmp>");
        assert_eq!(n("cannot open /tmp/abc987"), "cannot open <tmp>");
        assert_eq!(n("wrote tmpab12cd and tmp_x8Fq2"), "wrote <tmp> and <tmp>");
        assert_eq!(n("see tmpdir"), "see tmpdir");
        assert_eq!(
            n("read /tmp/pytest-of-ci/pytest-3/data.json"),
            "read data.json"
        );
        assert_eq!(n("either a/b or c"), "either a/b or c");
    }

    #[test]
    fn whitespace_is_collapsed_and_non_ascii_is_kept() {
        assert_eq!(n("  a \n\t b  "), "a b");
        assert_eq!(n("größe 12 ≠ 13"), "größe <n> ≠ <n>");
        assert_eq!(n(""), "");
    }

    #[test]
    fn the_same_problem_gives_the_same_signature() {
        let a = signature(
            "Timeout after 5000ms waiting for 10.0.3.17:5432 at 2024-05-01T10:00:00Z (pid 4411)",
        );
        let b = signature(
            "Timeout after 7250ms waiting for 10.0.9.2:5433 at 2024-06-11T23:59:59Z (pid 12)",
        );
        assert_eq!(a, b);
        assert_ne!(a, signature("assertion failed: left == right"));
    }

    #[test]
    fn signatures_are_stable_across_platforms_and_versions() {
        // FNV-1a 64 reference values: these must never change, stored signatures depend on them.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(
            signature("expected 1 got 2"),
            fnv1a(b"expected <n> got <n>")
        );
    }

    #[test]
    fn signature_hex_has_sixteen_lowercase_digits() {
        assert_eq!(signature_hex(0xAB), "00000000000000ab");
        assert_eq!(signature_hex(u64::MAX), "ffffffffffffffff");
    }
}
