//! Escaping text for the XML a run writes (the JUnit file, the timeline picture). Pure.
//!
//! The text is the agent's and Docker's (reasons, errors, task ids): it may hold any
//! character, and XML 1.0 cannot carry most control characters at all, not even as
//! character references. Those are written as `\u{..}`, so that a reader still sees
//! which byte it was and the file still parses.

/// `text` for an attribute value (in double or single quotes).
pub fn attr(text: &str) -> String {
    escape(text, true)
}

/// `text` for an element's content.
pub fn text(text: &str) -> String {
    escape(text, false)
}

fn escape(text: &str, in_attr: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // A parser reads a raw one as a space in an attribute, and a raw CR as LF anywhere.
            '\t' | '\n' if !in_attr => out.push(c),
            '\t' | '\n' | '\r' => out.push_str(&format!("&#{};", u32::from(c))),
            c if allowed(c) => out.push(c),
            c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    out
}

/// Whether XML 1.0 can carry `c` (its `Char` production, less what is escaped above).
fn allowed(c: char) -> bool {
    matches!(u32::from(c), 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// A small reader of the XML this module's users write, for their tests: elements,
/// attributes and text, with the five named entities and numeric references. It fails
/// on what a real parser rejects among the mistakes a writer makes: an unclosed or
/// mismatched tag, a raw `<` or `&` in text, an unquoted or duplicate attribute, a
/// character XML cannot carry.
#[cfg(test)]
pub mod read {
    /// An element.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Element {
        /// Its name.
        pub name: String,
        /// Its attributes, unescaped, in order.
        pub attrs: Vec<(String, String)>,
        /// Its child elements.
        pub children: Vec<Element>,
        /// Its text, unescaped, all pieces joined.
        pub text: String,
    }

    impl Element {
        /// The value of attribute `name`.
        pub fn attr(&self, name: &str) -> Option<&str> {
            self.attrs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }

        /// Every descendant (and itself) named `name`, in document order.
        pub fn all(&self, name: &str) -> Vec<&Element> {
            let mut out = Vec::new();
            if self.name == name {
                out.push(self);
            }
            for child in &self.children {
                out.extend(child.all(name));
            }
            out
        }
    }

    /// The document's root element.
    pub fn parse(doc: &str) -> Result<Element, String> {
        if let Some(bad) = doc
            .chars()
            .find(|&c| !(super::allowed(c) || "\t\n\r".contains(c)))
        {
            return Err(format!("a character XML cannot carry: {bad:?}"));
        }
        let mut rest = doc.trim_start();
        if let Some(after) = rest.strip_prefix("<?xml") {
            let end = after.find("?>").ok_or("an unclosed declaration")?;
            rest = after[end + 2..].trim_start();
        }
        let mut stack: Vec<Element> = Vec::new();
        let mut root = None;
        while !rest.is_empty() {
            if root.is_some() {
                if rest.trim().is_empty() {
                    break;
                }
                return Err(format!("content after the root: {rest:.40}"));
            }
            if let Some(after) = rest.strip_prefix("<!--") {
                let end = after.find("-->").ok_or("an unclosed comment")?;
                rest = &after[end + 3..];
            } else if let Some(after) = rest.strip_prefix("</") {
                let end = after.find('>').ok_or("an unclosed end tag")?;
                let name = after[..end].trim();
                let done = stack.pop().ok_or("an end tag with nothing open")?;
                if done.name != name {
                    return Err(format!("<{}> closed by </{name}>", done.name));
                }
                rest = &after[end + 1..];
                close(done, &mut stack, &mut root);
            } else if let Some(after) = rest.strip_prefix('<') {
                let end = after.find('>').ok_or("an unclosed start tag")?;
                let (inside, empty) = match after[..end].strip_suffix('/') {
                    Some(inside) => (inside, true),
                    None => (&after[..end], false),
                };
                let element = start_tag(inside)?;
                rest = &after[end + 1..];
                if empty {
                    close(element, &mut stack, &mut root);
                } else {
                    stack.push(element);
                }
            } else {
                let end = rest.find('<').unwrap_or(rest.len());
                let text = unescape(&rest[..end])?;
                match stack.last_mut() {
                    Some(open) => open.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(format!("text outside the root: {text:.40}")),
                }
                rest = &rest[end..];
            }
        }
        if let Some(open) = stack.last() {
            return Err(format!("<{}> is never closed", open.name));
        }
        root.ok_or_else(|| "no root element".to_owned())
    }

    fn close(done: Element, stack: &mut [Element], root: &mut Option<Element>) {
        match stack.last_mut() {
            Some(parent) => parent.children.push(done),
            None => *root = Some(done),
        }
    }

    fn start_tag(inside: &str) -> Result<Element, String> {
        let inside = inside.trim_end();
        let name_end = inside
            .find(|c: char| c.is_whitespace())
            .unwrap_or(inside.len());
        let name = &inside[..name_end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || "-_:.".contains(c))
        {
            return Err(format!("a bad element name: {name:?}"));
        }
        let mut attrs: Vec<(String, String)> = Vec::new();
        let mut rest = inside[name_end..].trim_start();
        while !rest.is_empty() {
            let eq = rest
                .find('=')
                .ok_or(format!("an attribute without a value: {rest}"))?;
            let key = rest[..eq].trim().to_owned();
            let after = rest[eq + 1..].trim_start();
            let quote = after
                .chars()
                .next()
                .filter(|q| *q == '"' || *q == '\'')
                .ok_or(format!("an unquoted attribute {key}"))?;
            let body = &after[1..];
            let end = body
                .find(quote)
                .ok_or(format!("an unclosed attribute {key}"))?;
            if attrs.iter().any(|(k, _)| *k == key) {
                return Err(format!("attribute {key} twice"));
            }
            attrs.push((key, unescape(&body[..end])?));
            rest = body[end + 1..].trim_start();
        }
        Ok(Element {
            name: name.to_owned(),
            attrs,
            children: Vec::new(),
            text: String::new(),
        })
    }

    fn unescape(raw: &str) -> Result<String, String> {
        if raw.contains('<') {
            return Err(format!("a raw < in {raw:.40}"));
        }
        let mut out = String::new();
        let mut rest = raw;
        while let Some(at) = rest.find('&') {
            out.push_str(&rest[..at]);
            let end = rest[at..]
                .find(';')
                .ok_or(format!("a raw & in {raw:.40}"))?
                + at;
            let entity = &rest[at + 1..end];
            let c = match entity {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => entity
                    .strip_prefix('#')
                    .and_then(|n| n.parse::<u32>().ok())
                    .and_then(char::from_u32)
                    .ok_or(format!("an unknown entity &{entity};"))?,
            };
            out.push(c);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_text_reads_back_from_an_attribute_and_from_content() {
        let cases = [
            ("plain", "plain", "plain"),
            (
                "<&\"'>",
                "&lt;&amp;&quot;&apos;&gt;",
                "&lt;&amp;&quot;&apos;&gt;",
            ),
            ("a\tb\nc\rd", "a&#9;b&#10;c&#13;d", "a\tb\nc&#13;d"),
            (
                "bell\u{7} nul\u{0}",
                "bell\\u{7} nul\\u{0}",
                "bell\\u{7} nul\\u{0}",
            ),
            (
                "\u{fffe}\u{1b}[31m",
                "\\u{fffe}\\u{1b}[31m",
                "\\u{fffe}\\u{1b}[31m",
            ),
            ("ünï 🐳", "ünï 🐳", "ünï 🐳"),
        ];
        for (raw, want_attr, want_text) in cases {
            assert_eq!(attr(raw), want_attr, "{raw:?}");
            assert_eq!(text(raw), want_text, "{raw:?}");
            let doc = format!("<a v=\"{}\">{}</a>", attr(raw), text(raw));
            let read = read::parse(&doc).unwrap_or_else(|e| panic!("{raw:?}: {e}: {doc}"));
            // What XML cannot carry comes back as its escape, the rest as it was.
            let carried = want_text
                .replace("&lt;&amp;&quot;&apos;&gt;", "<&\"'>")
                .replace("&#13;", "\r");
            assert_eq!(read.attr("v"), Some(carried.as_str()), "{raw:?}");
            assert_eq!(read.text, carried, "{raw:?}");
        }
    }

    #[test]
    fn the_reader_rejects_what_a_parser_would() {
        for bad in [
            "<a>",
            "<a></b>",
            "<a>x & y</a>",
            "<a v=x/>",
            "<a v=\"1\" v=\"2\"/>",
            "<a>\u{1}</a>",
            "<a/><b/>",
            "<a v=\"<\"/>",
        ] {
            assert!(read::parse(bad).is_err(), "{bad:?} parsed");
        }
        let ok = read::parse("<?xml version=\"1.0\"?>\n<a x='1'><!-- c --><b/>t&#10;</a>\n")
            .expect("parses");
        assert_eq!(ok.children.len(), 1);
        assert_eq!(ok.text, "t\n");
    }
}
