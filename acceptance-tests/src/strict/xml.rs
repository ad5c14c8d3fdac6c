//! Just enough XML for the lane: a small element tree read with
//! `xmlparser` (already in the build through the AWS SDK), escaping, and
//! the error documents S3 and Route 53 send.

/// An element: its local name, its text (entities decoded) and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name, without namespace prefix.
    pub name: String,
    /// Text directly inside the element.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// Every descendant (depth first) named `name`.
    pub fn descendants<'a>(&'a self, name: &'a str) -> Vec<&'a Element> {
        let mut out = Vec::new();
        for c in &self.children {
            if c.name == name {
                out.push(c);
            }
            out.extend(c.descendants(name));
        }
        out
    }
}

/// Parses a document into its root element; `None` when it is not XML.
pub fn parse(doc: &[u8]) -> Option<Element> {
    let text = std::str::from_utf8(doc).ok()?;
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    for token in xmlparser::Tokenizer::from(text) {
        match token.ok()? {
            xmlparser::Token::ElementStart { local, .. } => stack.push(Element {
                name: local.as_str().to_string(),
                ..Element::default()
            }),
            xmlparser::Token::ElementEnd { end, .. } => {
                if matches!(end, xmlparser::ElementEnd::Open) {
                    continue;
                }
                let done = stack.pop()?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            xmlparser::Token::Text { text } => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&unescape(text.as_str()));
                }
            }
            xmlparser::Token::Cdata { text, .. } => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(text.as_str());
                }
            }
            _ => {}
        }
    }
    root
}

/// Decodes the predefined entities and character references.
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e => e
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for an element's content.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// S3's namespace.
pub const S3_NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
/// Route 53's namespace.
pub const ROUTE53_NS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

/// An S3 error document; `extra` is appended inside `<Error>` as is.
pub fn s3_error(code: &str, message: &str, extra: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message>{extra}<RequestId>strict-lane</RequestId></Error>",
        escape(message)
    )
}

/// A Route 53 error document (the AWS query error shape restXml uses).
pub fn route53_error(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"{ROUTE53_NS}\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>strict-lane</RequestId></ErrorResponse>",
        escape(message)
    )
}

/// Replaces the text of every `<tag>...</tag>` in `doc` for which `f`
/// returns a new value; `f` gets the old text and the document before it.
pub fn rewrite_text(
    doc: &str,
    tag: &str,
    mut f: impl FnMut(&str, &str) -> Option<String>,
) -> String {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = String::with_capacity(doc.len());
    let mut rest = doc;
    while let Some(i) = rest.find(&open) {
        let start = i + open.len();
        let Some(len) = rest[start..].find(&close) else {
            break;
        };
        out.push_str(&rest[..start]);
        let old = &rest[start..start + len];
        let before = &doc[..doc.len() - rest.len() + start];
        match f(old, before) {
            Some(new) => out.push_str(&new),
            None => out.push_str(old),
        }
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

/// `doc` without any `<tag>...</tag>` element (flat: the tag must not nest).
pub fn remove_element(doc: &str, tag: &str) -> String {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = String::with_capacity(doc.len());
    let mut rest = doc;
    while let Some(i) = rest.find(&open) {
        let Some(len) = rest[i..].find(&close) else {
            break;
        };
        out.push_str(&rest[..i]);
        rest = &rest[i + len + close.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_elements_with_namespaces_and_entities() {
        let doc = br#"<?xml version="1.0"?><Delete xmlns="x"><Quiet>true</Quiet><Object><Key>a&amp;b</Key><VersionId>v1</VersionId></Object><Object><Key>c&#x2F;d</Key></Object></Delete>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Delete");
        assert_eq!(root.child_text("Quiet"), Some("true"));
        let keys: Vec<&str> = root
            .children_named("Object")
            .filter_map(|o| o.child_text("Key"))
            .collect();
        assert_eq!(keys, vec!["a&b", "c/d"]);
        assert_eq!(root.descendants("VersionId").len(), 1);
        assert!(parse(b"not xml <").is_none());
    }

    #[test]
    fn rewrites_chosen_texts_only() {
        let doc = "<A><Id>1</Id><V>x</V><Id>2</Id><V>y</V></A>";
        let out = rewrite_text(doc, "V", |old, before| {
            before.ends_with("<Id>2</Id><V>").then(|| format!("{old}!"))
        });
        assert_eq!(out, "<A><Id>1</Id><V>x</V><Id>2</Id><V>y!</V></A>");
        assert_eq!(escape("a<b&\""), "a&lt;b&amp;&quot;");
    }

    #[test]
    fn removes_every_occurrence_of_an_element() {
        let doc = "<A><Port>80</Port><B>1</B><Port>81</Port></A>";
        assert_eq!(remove_element(doc, "Port"), "<A><B>1</B></A>");
    }
}
