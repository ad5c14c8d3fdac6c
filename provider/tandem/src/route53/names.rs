//! DNS name normalisation. Route 53 answers with lowercase, fully qualified
//! names (trailing dot) and escapes some characters as `\ooo` (a leading
//! `*` comes back as `\052`); users write names any of these ways. Comparing
//! normalised forms keeps such cosmetic differences out of plans.

/// The canonical form of a DNS name: octal escapes decoded, lowercase, no
/// trailing dot.
pub fn normalize(name: &str) -> String {
    let decoded = decode_octal_escapes(name.trim());
    let lower = decoded.to_ascii_lowercase();
    match lower.strip_suffix('.') {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => lower,
    }
}

/// True when two names differ only cosmetically.
pub fn same(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

/// The name as Route 53 expects it in requests: canonical, fully qualified.
pub fn fqdn(name: &str) -> String {
    let mut n = normalize(name);
    n.push('.');
    n
}

/// Keeps `ours` (the user's spelling) when `theirs` (what AWS returned) is
/// the same name; otherwise the canonical form of `theirs`, which is drift.
pub fn keep_spelling(ours: Option<&str>, theirs: &str) -> String {
    match ours {
        Some(o) if same(o, theirs) => o.to_string(),
        _ => normalize(theirs),
    }
}

/// Decodes `\ooo` (three octal digits) escapes as Route 53 writes them.
/// Anything else, including a lone backslash, is kept as is.
fn decode_octal_escapes(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if let Some(code) = octal3(&bytes[i + 1..]) {
                out.push(code);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn octal3(b: &[u8]) -> Option<u8> {
    let digits = b.get(..3)?;
    let mut v: u32 = 0;
    for d in digits {
        if !(b'0'..=b'7').contains(d) {
            return None;
        }
        v = v * 8 + u32::from(d - b'0');
    }
    u8::try_from(v).ok()
}

/// What [`valid_name`] accepts, for the schema's docs.
pub const NAME: &str =
    "a DNS name (labels of 1-63 characters, at most 253 in all, `*` only as the whole first label)";

/// [`check`] as a schema format rule.
pub fn valid_name(name: &str) -> Result<(), String> {
    check(name).map_or(Ok(()), Err)
}

/// What [`valid_zone_name`] accepts, for the schema's docs.
pub const ZONE_NAME: &str = "a DNS name without wildcards";

/// A hosted zone's name: a DNS name, and no wildcard anywhere.
pub fn valid_zone_name(name: &str) -> Result<(), String> {
    valid_name(name)?;
    if name.contains('*') {
        return Err("a hosted zone name cannot contain a wildcard `*`".into());
    }
    Ok(())
}

/// Checks a DNS name's length and labels; returns the problem, if any.
pub fn check(name: &str) -> Option<String> {
    let n = normalize(name);
    if n.is_empty() {
        return Some("the name is empty".into());
    }
    if n.len() > 253 {
        return Some(format!(
            "the name has {} characters; at most 253 are allowed",
            n.len()
        ));
    }
    for label in n.split('.') {
        if label.is_empty() {
            return Some(format!("{name:?} has an empty label (two dots in a row)"));
        }
        if label.len() > 63 {
            return Some(format!(
                "the label {label:?} has {} characters; at most 63 are allowed",
                label.len()
            ));
        }
    }
    if n.contains('*') && !(n == "*" || n.starts_with("*.") && !n[1..].contains('*')) {
        return Some("a wildcard `*` is only allowed as the whole leftmost label".into());
    }
    None
}

/// A hosted zone ID without the `/hostedzone/` prefix the API sometimes adds.
pub fn zone_id(id: &str) -> String {
    id.trim()
        .trim_start_matches("/hostedzone/")
        .trim_start_matches("hostedzone/")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosmetic_differences_vanish() {
        assert_eq!(normalize("API.Example.COM."), "api.example.com");
        assert_eq!(normalize("\\052.example.com."), "*.example.com");
        assert!(same("*.example.com", "\\052.EXAMPLE.com."));
        assert_eq!(fqdn("Example.com"), "example.com.");
        assert_eq!(normalize("."), ".");
    }

    #[test]
    fn broken_escapes_are_kept() {
        assert_eq!(normalize("a\\09.example.com"), "a\\09.example.com");
        assert_eq!(normalize("a\\"), "a\\");
    }

    #[test]
    fn spelling_is_kept_only_when_equal() {
        assert_eq!(
            keep_spelling(Some("WWW.example.com"), "www.example.com."),
            "WWW.example.com"
        );
        assert_eq!(
            keep_spelling(Some("a.example.com"), "b.example.com."),
            "b.example.com"
        );
        assert_eq!(keep_spelling(None, "\\052.example.com."), "*.example.com");
    }

    #[test]
    fn bad_names_are_explained() {
        assert!(check("a..b").is_some());
        assert!(check(&"a".repeat(64)).is_some());
        assert!(check("a.*.example.com").is_some());
        assert!(check("*.example.com").is_none());
        assert!(check("").is_some());
    }

    #[test]
    fn zone_ids_lose_their_prefix() {
        assert_eq!(zone_id("/hostedzone/Z123"), "Z123");
        assert_eq!(zone_id("Z123"), "Z123");
    }
}
