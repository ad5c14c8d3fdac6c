//! Humane durations ("2s", "1m30s") and sizes ("256MiB") in config files,
//! kept as exact values and written back the way a person would write them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as `500ms`, `2s`, `1m30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

impl Dur {
    /// Whole seconds.
    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }

    /// Milliseconds.
    pub const fn millis(ms: u64) -> Dur {
        Dur(Duration::from_millis(ms))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Dur, String> {
        humantime::parse_duration(s.trim()).map(Dur).map_err(|e| {
            format!("{s:?} is not a duration like \"500ms\", \"2s\" or \"1m30s\" ({e})")
        })
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A size in bytes, written as `512KiB`, `256MiB`, `1GiB` or a plain number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub u64);

const UNITS: [(&str, u64); 9] = [
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
    ("G", 1 << 30),
    ("M", 1 << 20),
    ("K", 1 << 10),
];

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, mult) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if self.0 >= mult && self.0.is_multiple_of(mult) {
                return write!(f, "{}{name}", self.0 / mult);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl FromStr for Bytes {
    type Err = String;
    fn from_str(s: &str) -> Result<Bytes, String> {
        let t = s.trim();
        let bad = || format!("{s:?} is not a size like \"512KiB\", \"256MiB\" or \"1GiB\"");
        for (name, mult) in UNITS {
            if let Some(n) = t.strip_suffix(name) {
                let n: u64 = n.trim().parse().map_err(|_| bad())?;
                return n.checked_mul(mult).map(Bytes).ok_or_else(bad);
            }
        }
        t.trim_end_matches('B')
            .trim()
            .parse()
            .map(Bytes)
            .map_err(|_| bad())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Bytes(n)),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations_read_and_print_humanely() {
        assert_eq!("1m30s".parse::<Dur>().unwrap(), Dur::secs(90));
        assert_eq!(Dur::millis(500).to_string(), "500ms");
        assert!("soon".parse::<Dur>().unwrap_err().contains("\"soon\""));
    }

    #[test]
    fn sizes_read_and_print_humanely() {
        assert_eq!("256MiB".parse::<Bytes>().unwrap(), Bytes(256 << 20));
        assert_eq!("4 KiB".parse::<Bytes>().unwrap(), Bytes(4096));
        assert_eq!("1000".parse::<Bytes>().unwrap(), Bytes(1000));
        assert_eq!(Bytes(3 << 30).to_string(), "3GiB");
        assert_eq!(Bytes(1500).to_string(), "1500");
        assert!("99999999999999GiB".parse::<Bytes>().is_err());
        assert!("lots".parse::<Bytes>().is_err());
    }

    proptest! {
        #[test]
        fn sizes_round_trip(n in 0u64..(1 << 50)) {
            prop_assert_eq!(Bytes(n).to_string().parse::<Bytes>().unwrap(), Bytes(n));
        }

        #[test]
        fn durations_round_trip(ms in 0u64..10_000_000_000) {
            let d = Dur::millis(ms);
            prop_assert_eq!(d.to_string().parse::<Dur>().unwrap(), d);
        }
    }
}
