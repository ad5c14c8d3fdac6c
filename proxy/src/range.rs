//! `Range: bytes=...` parsing and arithmetic (RFC 9110 §14), kept pure so it
//! can be property-tested. Only single ranges are honoured: S3 itself
//! ignores multi-range requests, and so do we (the whole object is served).

/// A parsed byte-range specifier, before the object length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=first-last` or `bytes=first-` (open end).
    FromTo {
        /// First byte offset.
        first: u64,
        /// Last byte offset, inclusive; `None` means to the end.
        last: Option<u64>,
    },
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// What a `Range` header asks for once the object length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// Serve the whole object with 200 (no header, or one to ignore).
    Full,
    /// Serve bytes `start..=end` with 206.
    Partial {
        /// First byte, inclusive.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Parses a `Range` header value. `None` means "ignore it and serve the
/// whole object": a syntactically invalid header, another unit, or several
/// ranges (RFC 9110 lets a server ignore Range; S3 does for multi-range).
pub fn parse(header: &str) -> Option<RangeSpec> {
    let spec = header.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if a.is_empty() {
        return Some(RangeSpec::Suffix(num(b)?));
    }
    let first = num(a)?;
    if b.is_empty() {
        return Some(RangeSpec::FromTo { first, last: None });
    }
    let last = num(b)?;
    if last < first {
        return None;
    }
    Some(RangeSpec::FromTo {
        first,
        last: Some(last),
    })
}

/// Resolves a spec against an object of `len` bytes.
pub fn resolve(spec: Option<RangeSpec>, len: u64) -> Resolved {
    match spec {
        None => Resolved::Full,
        Some(RangeSpec::Suffix(0)) => Resolved::Unsatisfiable,
        Some(RangeSpec::Suffix(n)) => {
            if len == 0 {
                Resolved::Unsatisfiable
            } else {
                Resolved::Partial {
                    start: len.saturating_sub(n),
                    end: len - 1,
                }
            }
        }
        Some(RangeSpec::FromTo { first, last }) => {
            if first >= len {
                return Resolved::Unsatisfiable;
            }
            let end = last.map_or(len - 1, |l| l.min(len - 1));
            Resolved::Partial { start: first, end }
        }
    }
}

/// `Content-Range` value for a partial response.
pub fn content_range(start: u64, end: u64, len: u64) -> String {
    format!("bytes {start}-{end}/{len}")
}

/// Parses `Content-Range: bytes a-b/len` (as an origin sends it) into
/// `(start, end, len)`; `len` is `None` for `*`.
pub fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, len) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let len = if len == "*" {
        None
    } else {
        Some(len.parse().ok()?)
    };
    Some((a.parse().ok()?, b.parse().ok()?, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms() {
        assert_eq!(
            parse("bytes=0-9"),
            Some(RangeSpec::FromTo {
                first: 0,
                last: Some(9)
            })
        );
        assert_eq!(
            parse("bytes=5-"),
            Some(RangeSpec::FromTo {
                first: 5,
                last: None
            })
        );
        assert_eq!(parse("bytes=-3"), Some(RangeSpec::Suffix(3)));
        for ignored in [
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=9-1",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(parse(ignored), None, "{ignored}");
        }
        assert_eq!(
            resolve(parse("bytes=-3"), 10),
            Resolved::Partial { start: 7, end: 9 }
        );
        assert_eq!(
            resolve(parse("bytes=-30"), 10),
            Resolved::Partial { start: 0, end: 9 }
        );
        assert_eq!(
            resolve(parse("bytes=5-100"), 10),
            Resolved::Partial { start: 5, end: 9 }
        );
        assert_eq!(resolve(parse("bytes=10-"), 10), Resolved::Unsatisfiable);
        assert_eq!(resolve(parse("bytes=-0"), 10), Resolved::Unsatisfiable);
        assert_eq!(resolve(parse("bytes=0-"), 0), Resolved::Unsatisfiable);
        assert_eq!(resolve(None, 0), Resolved::Full);
        assert_eq!(
            parse_content_range("bytes 0-9/100"),
            Some((0, 9, Some(100)))
        );
    }

    proptest! {
        #[test]
        fn resolved_ranges_are_always_inside_the_object(h in "\\PC{0,24}|bytes=[0-9]{0,6}-[0-9]{0,6}", len in 0u64..2_000_000) {
            match resolve(parse(&h), len) {
                Resolved::Partial { start, end } => {
                    prop_assert!(start <= end);
                    prop_assert!(end < len);
                }
                Resolved::Full | Resolved::Unsatisfiable => {}
            }
        }

        #[test]
        fn satisfiable_iff_first_byte_exists(first in 0u64..1000, extra in proptest::option::of(0u64..1000), len in 0u64..1000) {
            let h = match extra { Some(e) => format!("bytes={first}-{}", first + e), None => format!("bytes={first}-") };
            let r = resolve(parse(&h), len);
            prop_assert_eq!(matches!(r, Resolved::Unsatisfiable), first >= len);
            if let Resolved::Partial { start, end } = r {
                prop_assert_eq!(start, first);
                prop_assert_eq!(end, extra.map_or(len - 1, |e| (first + e).min(len - 1)));
            }
        }

        #[test]
        fn suffix_length_is_min_of_n_and_len(n in 1u64..5000, len in 1u64..5000) {
            match resolve(parse(&format!("bytes=-{n}")), len) {
                Resolved::Partial { start, end } => prop_assert_eq!(end - start + 1, n.min(len)),
                other => prop_assert!(false, "{other:?}"),
            }
        }
    }
}
