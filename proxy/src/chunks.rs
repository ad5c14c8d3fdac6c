//! An object body held in memory as the chunks it was read in. A fill
//! allocates each chunk only when its first bytes arrive (never the whole
//! object up front), and nothing is ever concatenated: a range is a list
//! of slices of the chunks, and a Redis write copies the chunks straight
//! into the command.

use bytes::Bytes;

/// Chunks of at most this size are allocated while an object is read: large
/// enough that an 8 MiB object is a handful of allocations, small enough
/// that a stalled fill holds little it has not received.
pub const CHUNK: usize = 1 << 20;

/// A body as a list of shared chunks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunks {
    parts: Vec<Bytes>,
    len: usize,
}

impl Chunks {
    /// One chunk.
    pub fn one(b: Bytes) -> Chunks {
        let len = b.len();
        let parts = if len == 0 { Vec::new() } else { vec![b] };
        Chunks { parts, len }
    }

    /// Appends a chunk.
    pub fn push(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.len += b.len();
            self.parts.push(b);
        }
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunks, in order.
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// Bytes `start..=end` as slices of the chunks (no copy). The range
    /// must lie within the body.
    pub fn slice(&self, start: usize, end: usize) -> Chunks {
        let mut out = Chunks::default();
        let mut at = 0;
        for p in &self.parts {
            let (lo, hi) = (at, at + p.len());
            at = hi;
            if hi <= start {
                continue;
            }
            if lo > end {
                break;
            }
            let from = start.saturating_sub(lo);
            let to = (end + 1).min(hi) - lo;
            out.push(p.slice(from..to));
        }
        out
    }

    /// One contiguous copy, for tests.
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len);
        for p in &self.parts {
            v.extend_from_slice(p);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn slices_match_the_contiguous_bytes(
            sizes in proptest::collection::vec(0usize..50, 1..8),
            a in 0usize..400, b in 0usize..400,
        ) {
            let mut c = Chunks::default();
            let mut all = Vec::new();
            for (i, n) in sizes.iter().enumerate() {
                let part: Vec<u8> = (0..*n).map(|j| (i * 31 + j) as u8).collect();
                all.extend_from_slice(&part);
                c.push(Bytes::from(part));
            }
            prop_assert_eq!(c.len(), all.len());
            prop_assert_eq!(c.to_vec(), all.clone());
            if !all.is_empty() {
                let (s, e) = (a.min(b) % all.len(), a.max(b) % all.len());
                let (s, e) = (s.min(e), s.max(e));
                let sl = c.slice(s, e);
                prop_assert_eq!(sl.to_vec(), all[s..=e].to_vec());
                prop_assert_eq!(sl.len(), e - s + 1);
            }
        }
    }
}
