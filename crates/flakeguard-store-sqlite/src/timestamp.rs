//! Timestamps as stored: INTEGER unix microseconds, UTC. They sort like the instants they
//! stand for and round-trip exactly to the microsecond; anything finer is truncated (towards
//! the past) on the way in.

use flakeguard_store::StoreError;
use time::OffsetDateTime;

/// Microseconds since the unix epoch.
pub(crate) fn to_micros(t: OffsetDateTime) -> i64 {
    // Every OffsetDateTime (years ±9999) fits in i64 microseconds.
    t.unix_timestamp_nanos().div_euclid(1_000) as i64
}

/// The instant `micros` after the epoch, in UTC.
pub(crate) fn from_micros(micros: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|_| crate::error::corrupt(format_args!("timestamp {micros}")))
}

pub(crate) fn from_micros_opt(micros: Option<i64>) -> Result<Option<OffsetDateTime>, StoreError> {
    micros.map(from_micros).transpose()
}

/// Now, truncated to what the database keeps, so a returned record equals its stored copy.
pub(crate) fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn micros_round_trip_and_order() {
        for t in [
            datetime!(2026-11-01 09:00:00.123456 UTC),
            datetime!(1969-12-31 23:59:59.999999 UTC),
            datetime!(1970-01-01 00:00 UTC),
            datetime!(9999-12-31 23:59:59.999999 UTC),
            datetime!(-9999-01-01 00:00 UTC),
        ] {
            assert_eq!(from_micros(to_micros(t)).unwrap(), t);
        }
        assert!(
            to_micros(datetime!(1969-12-31 23:59:59.999999 UTC))
                < to_micros(datetime!(1970-01-01 00:00 UTC))
        );
        // Offsets do not matter: the instant is stored.
        assert_eq!(
            from_micros(to_micros(datetime!(2026-11-01 10:00 +01:00))).unwrap(),
            datetime!(2026-11-01 09:00 UTC)
        );
    }

    #[test]
    fn finer_precision_is_truncated_towards_the_past() {
        let t = datetime!(1969-12-31 23:59:59.9999995 UTC);
        assert_eq!(
            from_micros(to_micros(t)).unwrap(),
            datetime!(1969-12-31 23:59:59.999999 UTC)
        );
        let n = now();
        assert_eq!(from_micros(to_micros(n)).unwrap(), n);
    }
}
