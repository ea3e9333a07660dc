//! Durations in Go's `time.ParseDuration` syntax (`90s`, `1m30s`, `1.5h`, `300ms`), which is how
//! `metav1.Duration` fields (BGPPeer hold, keepalive and connect times) are written.

use std::fmt;

/// A signed duration with nanosecond resolution, like Go's `time.Duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration {
    pub nanos: i64,
}

/// Why a duration does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: use a number and a unit, such as 90s, 1m30s or 500ms")]
pub struct DurationError(pub String);

const UNITS: [(&str, i64); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

impl GoDuration {
    pub const fn from_secs(s: i64) -> Self {
        Self {
            nanos: s * 1_000_000_000,
        }
    }

    /// Parses Go duration syntax.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let err = || DurationError(text.to_string());
        let (negative, mut rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        if rest == "0" {
            return Ok(Self::default());
        }
        if rest.is_empty() {
            return Err(err());
        }
        let mut total: i128 = 0;
        while !rest.is_empty() {
            let int_end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let (int_part, after) = rest.split_at(int_end);
            let (frac_part, after) = match after.strip_prefix('.') {
                Some(a) => {
                    let end = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                    a.split_at(end)
                }
                None => ("", after),
            };
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(err());
            }
            let unit_end = after
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after.len());
            let (unit, after) = after.split_at(unit_end);
            let scale = UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, s)| *s)
                .ok_or_else(err)?;
            let int: i128 = if int_part.is_empty() {
                0
            } else {
                int_part.parse().map_err(|_| err())?
            };
            let mut value = int.checked_mul(i128::from(scale)).ok_or_else(err)?;
            if !frac_part.is_empty() {
                let digits = frac_part.len().min(18) as u32;
                let frac: i128 = frac_part[..digits as usize].parse().map_err(|_| err())?;
                value += frac * i128::from(scale) / 10i128.pow(digits);
            }
            total = total.checked_add(value).ok_or_else(err)?;
            rest = after;
        }
        let total = if negative { -total } else { total };
        i64::try_from(total)
            .map(|nanos| Self { nanos })
            .map_err(|_| err())
    }

    /// Whole seconds, truncated toward zero (Go's `int(d.Seconds())`).
    pub fn whole_seconds(&self) -> i64 {
        self.nanos / 1_000_000_000
    }

    /// Whether the duration is a whole number of seconds.
    pub fn is_whole_seconds(&self) -> bool {
        self.nanos % 1_000_000_000 == 0
    }

    pub fn as_std(&self) -> Option<std::time::Duration> {
        u64::try_from(self.nanos)
            .ok()
            .map(std::time::Duration::from_nanos)
    }
}

/// Go's `Duration.String()` form, e.g. `1m30s`, `1.5s`, `0s`.
impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut n = self.nanos.unsigned_abs();
        let sign = if self.nanos < 0 { "-" } else { "" };
        if n == 0 {
            return f.write_str("0s");
        }
        if n < 1_000_000_000 {
            let (unit, scale) = if n < 1_000 {
                ("ns", 1)
            } else if n < 1_000_000 {
                ("µs", 1_000)
            } else {
                ("ms", 1_000_000)
            };
            return write!(f, "{sign}{}{unit}", trim_frac(n, scale));
        }
        let h = n / 3_600_000_000_000;
        n %= 3_600_000_000_000;
        let m = n / 60_000_000_000;
        n %= 60_000_000_000;
        let mut s = String::from(sign);
        if h > 0 {
            s += &format!("{h}h");
        }
        if h > 0 || m > 0 {
            s += &format!("{m}m");
        }
        s += &format!("{}s", trim_frac(n, 1_000_000_000));
        f.write_str(&s)
    }
}

fn trim_frac(n: u64, scale: u64) -> String {
    let whole = n / scale;
    let frac = n % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> i64 {
        GoDuration::parse(s).unwrap().nanos
    }

    #[test]
    fn go_syntax_parses() {
        assert_eq!(d("90s"), 90_000_000_000);
        assert_eq!(d("1m30s"), 90_000_000_000);
        assert_eq!(d("1.5h"), 5_400_000_000_000);
        assert_eq!(d("300ms"), 300_000_000);
        assert_eq!(d("0"), 0);
        assert_eq!(d("-2s"), -2_000_000_000);
        assert_eq!(d(".5s"), 500_000_000);
        assert_eq!(d("1h2m3s4ms"), 3_723_004_000_000);
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for bad in ["", "10", "s", "1x", "1.s.", "--1s", "1e3s", " 1s"] {
            assert!(GoDuration::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn display_matches_go() {
        for (text, want) in [
            ("90s", "1m30s"),
            ("1.5s", "1.5s"),
            ("0s", "0s"),
            ("3h", "3h0m0s"),
            ("250ms", "250ms"),
        ] {
            assert_eq!(GoDuration::parse(text).unwrap().to_string(), want);
        }
    }
}
