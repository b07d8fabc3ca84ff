//! A plain-text rendering of an HTML mail body, for mails sent without a text/plain part.
//!
//! Markup, comments and the contents of `script`, `style`, `title` and `template` never reach
//! the text. Block elements end lines and paragraphs, `<br>` breaks a line, list items start
//! with `- `, links keep their target as `text (url)`, and lines inside `<blockquote>` start
//! with `> ` so that quoted history can be told apart as in a plain-text mail.

use mail_parser::decoders::html::add_html_token;

/// The deepest `>` prefix written for nested blockquotes.
const MAX_QUOTE_PREFIX: usize = 16;

/// Elements whose content is not text a reader sees.
const HIDDEN: [&str; 4] = ["script", "style", "title", "template"];

/// Elements that stand as their own paragraph (a blank line around them).
const PARAGRAPHS: [&str; 7] = ["p", "h1", "h2", "h3", "h4", "h5", "h6"];

/// Elements that start and end a line.
const BLOCKS: [&str; 21] = [
    "div", "ul", "ol", "dl", "dt", "dd", "li", "table", "tr", "section", "article", "header",
    "footer", "nav", "aside", "main", "address", "center", "form", "figure", "hr",
];

/// Renders an HTML document or fragment as plain text.
pub(crate) fn html_to_text(html: &str) -> String {
    let mut r = Renderer::new();
    let len = html.len();
    let mut i = 0;
    while i < len {
        let Some(offset) = html[i..].find('<') else {
            r.text(&html[i..]);
            break;
        };
        let lt = i + offset;
        r.text(&html[i..lt]);
        let after = &html[lt + 1..];
        if after.starts_with("!--") {
            i = html[lt + 4..].find("-->").map_or(len, |e| lt + 4 + e + 3);
            continue;
        }
        if after.starts_with('!') || after.starts_with('?') {
            // Doctype, CDATA, conditional comment ends, processing instructions.
            i = html[lt..].find('>').map_or(len, |e| lt + e + 1);
            continue;
        }
        let closing = after.starts_with('/');
        let name_start = lt + 1 + usize::from(closing);
        let name_len = html[name_start..]
            .bytes()
            .take_while(u8::is_ascii_alphanumeric)
            .count();
        if name_len == 0 || !html.as_bytes()[name_start].is_ascii_alphabetic() {
            // A `<` that opens no tag (`a < b`) is text.
            r.text("<");
            i = lt + 1;
            continue;
        }
        let name = html[name_start..name_start + name_len].to_ascii_lowercase();
        let attrs_start = name_start + name_len;
        let Some(tag_end) = find_tag_end(html, attrs_start) else {
            // An unterminated tag swallows the rest, as in a browser.
            break;
        };
        i = tag_end + 1;
        if closing {
            r.end_tag(&name);
        } else if HIDDEN.contains(&name.as_str()) {
            i = skip_hidden(html, i, &name);
        } else {
            r.start_tag(&name, &html[attrs_start..tag_end]);
        }
    }
    r.finish()
}

/// The index of the `>` closing a tag whose attributes start at `from`.
fn find_tag_end(html: &str, from: usize) -> Option<usize> {
    let b = html.as_bytes();
    let mut quote: Option<u8> = None;
    let mut after_equals = false;
    for (offset, &c) in b[from..].iter().enumerate() {
        let i = from + offset;
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            b'>' => return Some(i),
            b'"' | b'\'' if after_equals => quote = Some(c),
            b'=' => {
                after_equals = true;
                continue;
            }
            c if c.is_ascii_whitespace() => continue,
            _ => {}
        }
        after_equals = false;
    }
    None
}

/// The index just past the end tag of a hidden element whose content starts at `from`.
fn skip_hidden(html: &str, from: usize, name: &str) -> usize {
    let b = html.as_bytes();
    let mut i = from;
    while let Some(offset) = html[i..].find("</") {
        let at = i + offset;
        let candidate = &b[at + 2..];
        let matches = candidate.len() >= name.len()
            && candidate[..name.len()].eq_ignore_ascii_case(name.as_bytes())
            && candidate
                .get(name.len())
                .is_none_or(|c| !c.is_ascii_alphanumeric());
        if matches {
            return html[at..].find('>').map_or(html.len(), |e| at + e + 1);
        }
        i = at + 2;
    }
    html.len()
}

/// The (entity-decoded) value of an attribute in a tag's attribute text.
fn attribute(attrs: &str, wanted: &str) -> Option<String> {
    let b = attrs.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let name_start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'/' | b'>') {
            i += 1;
        }
        let name = &attrs[name_start..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = None;
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && matches!(b[i], b'"' | b'\'') {
                let q = b[i];
                let start = i + 1;
                let end = attrs[start..]
                    .find(q as char)
                    .map_or(b.len(), |e| start + e);
                value = Some(&attrs[start..end]);
                i = (end + 1).min(b.len());
            } else {
                let start = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = Some(&attrs[start..i]);
            }
        } else if name.is_empty() {
            // A stray `>` or similar: step over it.
            i += 1;
            continue;
        }
        if name.eq_ignore_ascii_case(wanted) {
            return value.map(decode_entities);
        }
    }
    None
}

/// Replaces character references (`&amp;`, `&#233;`, `&#x1F600;`); unknown ones stay as written.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let len = after
            .bytes()
            .take(32)
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'#')
            .count();
        if len > 0 && after.as_bytes().get(len) == Some(&b';') {
            if let Some(c) = decode_entity(&after[..len]) {
                out.push(c);
                rest = &after[len + 1..];
                continue;
            }
        }
        out.push('&');
        rest = after;
    }
    out.push_str(rest);
    out
}

fn decode_entity(entity: &str) -> Option<char> {
    if let Some(number) = entity.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return Some(
            char::from_u32(code)
                .filter(|&c| c != '\0')
                .unwrap_or('\u{fffd}'),
        );
    }
    let token = format!("&{entity};");
    let mut decoded = String::new();
    add_html_token(&mut decoded, token.as_bytes(), false);
    let mut chars = decoded.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if decoded != token => Some(c),
        _ => None,
    }
}

/// Builds the text while walking the document.
struct Renderer {
    out: String,
    /// Line breaks due before the next visible character.
    owed_newlines: usize,
    /// Whitespace seen since the last visible character.
    pending_space: bool,
    /// Whether nothing has been written on the current line yet.
    line_empty: bool,
    quote_depth: usize,
    pre_depth: usize,
    /// The open link: its target and where its text starts in `out`.
    link: Option<(Option<String>, usize)>,
}

impl Renderer {
    fn new() -> Self {
        Renderer {
            out: String::new(),
            owed_newlines: 0,
            pending_space: false,
            line_empty: true,
            quote_depth: 0,
            pre_depth: 0,
            link: None,
        }
    }

    fn text(&mut self, raw: &str) {
        if raw.is_empty() {
            return;
        }
        let decoded = decode_entities(raw);
        if self.pre_depth > 0 {
            for (n, line) in decoded.split('\n').enumerate() {
                if n > 0 {
                    self.owed_newlines += 1;
                }
                line.chars()
                    .filter(|&c| c != '\r')
                    .for_each(|c| self.put(c));
            }
        } else {
            for c in decoded.chars() {
                if c.is_whitespace() {
                    self.pending_space = true;
                } else {
                    self.put(c);
                }
            }
        }
    }

    /// Writes one visible character, after any line breaks, quote prefix or space it is owed.
    fn put(&mut self, c: char) {
        if self.owed_newlines > 0 {
            if !self.out.is_empty() {
                for _ in 0..self.owed_newlines {
                    self.out.push('\n');
                }
                self.line_empty = true;
            }
            self.owed_newlines = 0;
        }
        if self.line_empty {
            if self.quote_depth > 0 {
                self.out
                    .push_str(&">".repeat(self.quote_depth.min(MAX_QUOTE_PREFIX)));
                self.out.push(' ');
            }
            self.line_empty = false;
        } else if self.pending_space {
            self.out.push(' ');
        }
        self.pending_space = false;
        self.out.push(c);
    }

    fn block(&mut self, newlines: usize) {
        self.owed_newlines = self.owed_newlines.max(newlines);
        self.pending_space = false;
    }

    fn start_tag(&mut self, name: &str, attrs: &str) {
        match name {
            "br" => {
                self.owed_newlines += 1;
                self.pending_space = false;
            }
            "li" => {
                self.block(1);
                self.put('-');
                self.pending_space = true;
            }
            "blockquote" => {
                self.block(1);
                self.quote_depth += 1;
            }
            "pre" => {
                self.block(1);
                self.pre_depth += 1;
            }
            "td" | "th" => self.pending_space = true,
            "a" => {
                // Links do not nest: a new one closes the open one, as in a browser.
                self.end_link();
                let href = attribute(attrs, "href")
                    .map(|h| h.trim().to_string())
                    .filter(|h| is_shown_link(h));
                self.link = Some((href, self.out.len()));
            }
            _ if PARAGRAPHS.contains(&name) => self.block(2),
            _ if BLOCKS.contains(&name) => self.block(1),
            _ => {}
        }
    }

    fn end_tag(&mut self, name: &str) {
        match name {
            "blockquote" => {
                self.block(1);
                self.quote_depth = self.quote_depth.saturating_sub(1);
            }
            "pre" => {
                self.block(1);
                self.pre_depth = self.pre_depth.saturating_sub(1);
            }
            "td" | "th" => self.pending_space = true,
            "a" => self.end_link(),
            _ if PARAGRAPHS.contains(&name) => self.block(2),
            _ if BLOCKS.contains(&name) => self.block(1),
            _ => {}
        }
    }

    /// Appends ` (url)` after a link's text, unless the text already is the address.
    fn end_link(&mut self) {
        let Some((Some(href), start)) = self.link.take() else {
            return;
        };
        let shown = self.out.get(start..).unwrap_or_default().trim();
        if shown.is_empty() || without_scheme(shown) == without_scheme(&href) {
            return;
        }
        // Whitespace already seen after the link text goes after the address.
        let space_after = self.pending_space;
        self.pending_space = true;
        for c in format!("({href})").chars() {
            self.put(c);
        }
        self.pending_space = space_after;
    }

    fn finish(self) -> String {
        let mut text = String::with_capacity(self.out.len());
        let mut blank_lines = 0;
        for line in self.out.split('\n') {
            let line = line.trim_end();
            if line.is_empty() {
                blank_lines += 1;
                if blank_lines > 1 {
                    continue;
                }
            } else {
                blank_lines = 0;
            }
            text.push_str(line);
            text.push('\n');
        }
        text.trim().to_string()
    }
}

/// The schemes of links worth showing.
const SCHEMES: [&str; 3] = ["https://", "http://", "mailto:"];

/// The scheme a URL starts with (any case), if it is one of [`SCHEMES`].
fn scheme_of(url: &str) -> Option<&'static str> {
    SCHEMES.into_iter().find(|s| {
        url.get(..s.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(s))
    })
}

/// Links worth showing: web and mail addresses, without spaces.
fn is_shown_link(href: &str) -> bool {
    scheme_of(href).is_some_and(|s| href.len() > s.len())
        && !href.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn without_scheme(url: &str) -> &str {
    let rest = scheme_of(url).map_or(url, |s| &url[s.len()..]);
    rest.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_paragraphs_and_drops_inline_markup() {
        assert_eq!(
            html_to_text("<p>Hi, my invoice shows the <b>wrong</b> address.</p><p>Alex</p>"),
            "Hi, my invoice shows the wrong address.\n\nAlex"
        );
    }

    #[test]
    fn never_shows_style_script_title_or_comments() {
        let html = r#"<html><head><title>T</title><style type="text/css">p { color: red; }</style>
            <SCRIPT type="text/javascript">var leak = "<p>x</p>";</SCRIPT></head>
            <body><!-- hidden <b>note</b> --><p>Visible</p><!--[if mso]><xml>o</xml><![endif]--></body></html>"#;
        assert_eq!(html_to_text(html), "Visible");
    }

    #[test]
    fn an_unclosed_hidden_element_hides_the_rest() {
        assert_eq!(html_to_text("Before<style>body { x: y }"), "Before");
        assert_eq!(html_to_text("Before<script>alert(1)</scriptx>"), "Before");
    }

    #[test]
    fn breaks_lines_at_br_and_blocks() {
        assert_eq!(
            html_to_text("<div>one<br></div><div>two</div><div><br></div><div>three</div>"),
            "one\ntwo\n\nthree"
        );
        assert_eq!(html_to_text("a<br>b<br/><br />c"), "a\nb\n\nc");
    }

    #[test]
    fn renders_list_items_and_table_cells() {
        assert_eq!(
            html_to_text("<ul><li>Browser: Firefox</li><li>OS: Linux</li></ul>"),
            "- Browser: Firefox\n- OS: Linux"
        );
        assert_eq!(
            html_to_text("<table><tr><td>Order</td><td>#123</td></tr></table>"),
            "Order #123"
        );
    }

    #[test]
    fn keeps_link_targets_unless_the_text_is_the_address() {
        assert_eq!(
            html_to_text(r#"Go to <a href="https://example.com/reset?a=1&amp;b=2">the page</a>."#),
            "Go to the page (https://example.com/reset?a=1&b=2)."
        );
        assert_eq!(
            html_to_text(r#"<a href="mailto:help@example.com">help@example.com</a>"#),
            "help@example.com"
        );
        assert_eq!(
            html_to_text(r#"<a href="https://example.com/">example.com</a>"#),
            "example.com"
        );
        assert_eq!(
            html_to_text(r#"<a href="javascript:alert(1)">click</a> <a href='#top'>top</a>"#),
            "click top"
        );
    }

    #[test]
    fn closes_an_open_link_when_another_starts() {
        assert_eq!(
            html_to_text(
                r#"<a href="https://a.example/">one <a href="https://b.example/">two</a> three</a>"#
            ),
            "one (https://a.example/) two (https://b.example/) three"
        );
    }

    #[test]
    fn renders_pathological_nesting_in_bounded_space() {
        let html = format!("{}text<br>more", "<blockquote>".repeat(10_000));
        let text = html_to_text(&html);
        assert_eq!(text, format!("{0} text\n{0} more", ">".repeat(16)));
        let links = "<a href=\"https://x.example/\">x".repeat(10_000) + &"</a>".repeat(10_000);
        assert!(html_to_text(&links).len() < 300_000);
    }

    #[test]
    fn prefixes_blockquote_lines() {
        let html = "<div>Thanks</div><div class=\"gmail_quote\"><div>On Fri, 20 Nov 2026, A wrote:<br></div><blockquote><div>Line one</div><div>Line two</div><blockquote>Older</blockquote></blockquote></div>";
        assert_eq!(
            html_to_text(html),
            "Thanks\nOn Fri, 20 Nov 2026, A wrote:\n> Line one\n> Line two\n>> Older"
        );
    }

    #[test]
    fn decodes_character_references() {
        assert_eq!(
            html_to_text("caf&eacute; &amp; cr&#232;me &#x1F389; &lt;b&gt; AT&T &bogus; &#0;"),
            "café & crème 🎉 <b> AT&T &bogus; \u{fffd}"
        );
    }

    #[test]
    fn collapses_whitespace_but_keeps_preformatted_text() {
        assert_eq!(html_to_text("  a \n\t b  "), "a b");
        assert_eq!(
            html_to_text("<pre>line 1\n  indented</pre>after"),
            "line 1\n  indented\nafter"
        );
    }

    #[test]
    fn treats_stray_angle_brackets_as_text_and_survives_broken_markup() {
        assert_eq!(html_to_text("1 < 2 and 3 > 2"), "1 < 2 and 3 > 2");
        assert_eq!(html_to_text("ok <b"), "ok");
        assert_eq!(html_to_text(r#"ok <a href="x>never closed"#), "ok");
        assert_eq!(html_to_text("<"), "<");
        assert_eq!(html_to_text("</>&"), "</>&");
        assert_eq!(html_to_text("<!--"), "");
        assert_eq!(html_to_text("é<é>ü</ü>"), "é<é>ü</ü>");
    }
}
