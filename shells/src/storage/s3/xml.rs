//! Just enough XML: writing S3's answers (every text escaped) and reading
//! the two bodies S3 clients send (`Delete`, `CompleteMultipartUpload`)
//! into a small element tree. No DTDs and no custom entities: a document
//! that declares one is refused.

use std::fmt::Write;

pub const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
pub const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Text or attribute value, escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// An XML document being written.
pub struct Doc(String);

impl Doc {
    /// A document whose root is `<root xmlns=S3>`.
    pub fn new(root: &str) -> Doc {
        Doc(format!("{DECLARATION}<{root} xmlns=\"{NS}\">"))
    }

    /// A document without the S3 namespace (errors).
    pub fn plain(root: &str) -> Doc {
        Doc(format!("{DECLARATION}<{root}>"))
    }

    pub fn open(&mut self, name: &str) -> &mut Doc {
        let _ = write!(self.0, "<{name}>");
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Doc {
        let _ = write!(self.0, "</{name}>");
        self
    }

    /// `<name>text</name>`, escaped.
    pub fn text(&mut self, name: &str, text: impl AsRef<str>) -> &mut Doc {
        let _ = write!(self.0, "<{name}>{}</{name}>", escape(text.as_ref()));
        self
    }

    pub fn finish(mut self, root: &str) -> String {
        let _ = write!(self.0, "</{root}>");
        self.0
    }
}

/// An element read from a body: its local name (namespace prefix
/// dropped), its text and its children.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
}

/// Why a body is not the XML we take (S3: `MalformedXML`).
#[derive(Debug)]
pub struct Malformed(pub String);

fn bad<T>(why: impl Into<String>) -> Result<T, Malformed> {
    Err(Malformed(why.into()))
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// `&amp;` and friends, and character references.
fn unescape(raw: &str, out: &mut String) -> Result<(), Malformed> {
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let Some(end) = after.find(';') else {
            return bad("an unterminated entity");
        };
        let entity = &after[..end];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code =
                    if let Some(hex) = entity.strip_prefix("#x").or(entity.strip_prefix("#X")) {
                        u32::from_str_radix(hex, 16).ok()
                    } else if let Some(dec) = entity.strip_prefix('#') {
                        dec.parse().ok()
                    } else {
                        None
                    };
                match code.and_then(char::from_u32) {
                    Some(c) => c,
                    None => return bad(format!("unknown entity &{entity};")),
                }
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(())
}

/// Parses a document into its root element.
pub fn parse(body: &[u8]) -> Result<Element, Malformed> {
    let Ok(text) = std::str::from_utf8(body) else {
        return bad("the body is not UTF-8");
    };
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut rest = text.trim_start_matches('\u{feff}');
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            // Text after the root or between elements.
            match stack.last_mut() {
                Some(e) => unescape(rest, &mut e.text)?,
                None if rest.trim().is_empty() => {}
                None => return bad("text outside the root element"),
            }
            break;
        };
        if lt > 0 {
            let chunk = &rest[..lt];
            match stack.last_mut() {
                Some(e) => unescape(chunk, &mut e.text)?,
                None if chunk.trim().is_empty() => {}
                None => return bad("text outside the root element"),
            }
        }
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<?") {
            let Some(end) = after.find("?>") else {
                return bad("an unterminated declaration");
            };
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix("<!--") {
            let Some(end) = after.find("-->") else {
                return bad("an unterminated comment");
            };
            rest = &after[end + 3..];
        } else if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let Some(end) = after.find("]]>") else {
                return bad("an unterminated CDATA section");
            };
            match stack.last_mut() {
                Some(e) => e.text.push_str(&after[..end]),
                None => return bad("CDATA outside the root element"),
            }
            rest = &after[end + 3..];
        } else if rest.starts_with("<!") {
            return bad("document type declarations are not accepted");
        } else if let Some(after) = rest.strip_prefix("</") {
            let Some(end) = after.find('>') else {
                return bad("an unterminated end tag");
            };
            let name = local(after[..end].trim());
            let Some(element) = stack.pop() else {
                return bad("an end tag without a start");
            };
            if element.name != name {
                return bad(format!("</{name}> closes <{}>", element.name));
            }
            match stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None if root.is_none() => root = Some(element),
                None => return bad("two root elements"),
            }
            rest = &after[end + 1..];
        } else {
            let after = &rest[1..];
            let Some(end) = after.find('>') else {
                return bad("an unterminated start tag");
            };
            let tag = &after[..end];
            let (tag, empty) = match tag.strip_suffix('/') {
                Some(t) => (t, true),
                None => (tag, false),
            };
            let name = tag
                .split(|c: char| c.is_ascii_whitespace())
                .next()
                .unwrap_or("");
            if name.is_empty() {
                return bad("an element without a name");
            }
            if stack.len() > 16 {
                return bad("elements nested too deep");
            }
            if root.is_some() && stack.is_empty() {
                return bad("two root elements");
            }
            let element = Element {
                name: local(name).to_string(),
                ..Element::default()
            };
            if empty {
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            } else {
                stack.push(element);
            }
            rest = &after[end + 1..];
        }
    }
    if !stack.is_empty() {
        return bad("the document ends inside an element");
    }
    root.ok_or_else(|| Malformed("the body holds no element".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_clients_send() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a &amp; b&lt;c&#x41;&#66;</Key></Object><Object><Key> spaced </Key></Object><Quiet>true</Quiet><Object><Key><![CDATA[<raw>]]></Key></Object><Empty/></Delete>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Delete");
        let keys: Vec<&str> = root
            .all("Object")
            .map(|o| o.child("Key").unwrap().text.as_str())
            .collect();
        assert_eq!(keys, ["a & b<cAB", " spaced ", "<raw>"]);
        assert_eq!(root.child("Quiet").unwrap().text, "true");
        assert!(root.child("Empty").is_some());
    }

    #[test]
    fn refuses_broken_documents() {
        for doc in [
            &b"<a><b></a>"[..],
            b"<a>",
            b"<!DOCTYPE x [<!ENTITY e \"boom\">]><a>&e;</a>",
            b"<a>&bogus;</a>",
            b"<a/><b/>",
            b"",
            b"text",
        ] {
            assert!(parse(doc).is_err(), "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn escapes_text() {
        let mut doc = Doc::new("R");
        doc.text("Key", "a<b>&\"c'");
        assert!(
            doc.finish("R")
                .contains("<Key>a&lt;b&gt;&amp;&quot;c&apos;</Key>")
        );
    }
}
