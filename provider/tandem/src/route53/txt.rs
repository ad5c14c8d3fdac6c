//! TXT and SPF record values as Route 53 wants them. DNS holds a TXT value
//! as character-strings of at most 255 **bytes** each (RFC 1035 §3.3), and
//! Route 53 takes every byte outside printable ASCII as a `\ooo` octal
//! escape. Users write plain text, as with terraform-provider-aws, so text
//! is split on character boundaries into strings of at most 255 UTF-8
//! bytes, each quoted and escaped; reading decodes the same forms back.

use std::fmt::Write as _;

/// Longest character-string of a TXT record, in bytes (RFC 1035 §3.3).
pub const MAX_STRING_BYTES: usize = 255;

/// The value as sent to Route 53: quoted character-strings of at most
/// [`MAX_STRING_BYTES`] bytes each, separated by spaces. A value that
/// already starts with a quote is taken as written by someone who knows
/// the format, and sent unchanged.
pub fn encode(text: &str) -> String {
    if text.starts_with('"') {
        return text.to_string();
    }
    let mut strings = Vec::new();
    let (mut current, mut bytes) = (String::new(), 0);
    for ch in text.chars() {
        let n = ch.len_utf8();
        if bytes + n > MAX_STRING_BYTES {
            strings.push(std::mem::take(&mut current));
            bytes = 0;
        }
        escape_into(&mut current, ch);
        bytes += n;
    }
    if !current.is_empty() || strings.is_empty() {
        strings.push(current);
    }
    strings
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One character inside a quoted character-string: quote and backslash
/// escaped with a backslash, anything outside printable ASCII as the
/// octal escape of each of its UTF-8 bytes.
fn escape_into(out: &mut String, ch: char) {
    match ch {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        ' '..='~' => out.push(ch),
        _ => {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
}

/// The text of a value: quoted character-strings unescaped (`\"`, `\\`,
/// `\ooo`) and concatenated; an unquoted value is its own text.
pub fn decode(value: &str) -> String {
    let v = value.trim();
    if !v.starts_with('"') {
        return v.to_string();
    }
    let b = v.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut quoted = false;
    let mut i = 0;
    while i < b.len() {
        match (b[i], quoted) {
            (b'"', _) => quoted = !quoted,
            (b'\\', true) => {
                if let Some(code) = octal(b.get(i + 1..i + 4)) {
                    out.push(code);
                    i += 3;
                } else if let Some(&next) = b.get(i + 1) {
                    out.push(next);
                    i += 1;
                }
            }
            (c, true) => out.push(c),
            // Whitespace between character-strings is not part of the text.
            (_, false) => {}
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn octal(digits: Option<&[u8]>) -> Option<u8> {
    let d = digits?;
    if !d.iter().all(|c| (b'0'..=b'7').contains(c)) {
        return None;
    }
    let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
    u8::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte length of each character-string of an encoded value, as a
    /// DNS server counts them.
    fn string_lengths(value: &str) -> Vec<usize> {
        value
            .split("\" \"")
            .map(|s| decode(&format!("\"{}\"", s.trim_matches('"'))).len())
            .collect()
    }

    #[test]
    fn plain_text_is_quoted_and_escaped() {
        assert_eq!(encode("v=spf1 -all"), "\"v=spf1 -all\"");
        assert_eq!(encode("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(encode("\"already\""), "\"already\"");
        assert_eq!(encode(""), "\"\"");
        assert_eq!(decode("\"say \\\"hi\\\"\""), "say \"hi\"");
    }

    #[test]
    fn long_ascii_splits_at_255_bytes() {
        let long = "k".repeat(300);
        let wire = encode(&long);
        assert_eq!(
            wire,
            format!("\"{}\" \"{}\"", "k".repeat(255), "k".repeat(45))
        );
        assert_eq!(decode(&wire), long);
    }

    #[test]
    fn multi_byte_text_splits_by_bytes_on_character_boundaries() {
        // 200 × "é" is 400 bytes: 255 characters of it would be 510 bytes,
        // twice what one character-string may hold.
        let text = "é".repeat(200);
        let wire = encode(&text);
        assert_eq!(string_lengths(&wire), vec![254, 146]);
        assert!(
            wire.is_ascii(),
            "non-ASCII bytes go as octal escapes: {wire}"
        );
        assert!(wire.starts_with("\"\\303\\251\\303\\251"), "{wire}");
        assert_eq!(decode(&wire), text);
        // A 4-byte character never straddles two strings.
        let mixed = format!("{}🦀{}", "a".repeat(253), "b");
        assert_eq!(string_lengths(&encode(&mixed)), vec![253, 5]);
        assert_eq!(decode(&encode(&mixed)), mixed);
    }

    #[test]
    fn control_characters_are_escaped_too() {
        assert_eq!(encode("a\tb"), "\"a\\011b\"");
        assert_eq!(decode("\"a\\011b\""), "a\tb");
    }
}
