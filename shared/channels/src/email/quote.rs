//! Separating the new text of an email reply from the quoted history its client appended.
//!
//! The history starts at the first quote marker: an attribution line (`On … wrote:`,
//! `Am … schrieb …:`, `Le … a écrit :`, possibly wrapped over two lines), an
//! `-----Original Message-----` separator, Outlook's underscore rule followed by `From:`, an
//! Outlook header block (`From:` then `Sent:`), or a trailing block of `>` lines.

/// The new text of a message (trimmed) and the quoted history below it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitText {
    /// What the author wrote in this message.
    pub text: String,
    /// Everything from the first quote marker on.
    pub quoted: Option<String>,
}

/// Splits a plain-text body at its first quote marker. A body that would be left with no new
/// text (one that starts with a marker, or is entirely quoted) is kept whole.
pub(crate) fn split_quoted(body: &str) -> SplitText {
    let body = body.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = body.split('\n').collect();
    let whole = || SplitText {
        text: body.trim().to_string(),
        quoted: None,
    };
    let Some(start) = quote_start(&lines) else {
        return whole();
    };
    let text = lines[..start].join("\n").trim().to_string();
    if text.is_empty() {
        return whole();
    }
    let quoted = lines[start..].join("\n").trim().to_string();
    SplitText {
        text,
        quoted: (!quoted.is_empty()).then_some(quoted),
    }
}

/// The index of the line where the quoted history starts.
fn quote_start(lines: &[&str]) -> Option<usize> {
    (0..lines.len())
        .find(|&i| is_marker_at(lines, i))
        .or_else(|| trailing_quote_block(lines))
}

/// A line with no-break spaces made plain and outer whitespace removed.
fn clean(line: &str) -> String {
    line.replace(['\u{a0}', '\u{202f}'], " ").trim().to_string()
}

fn is_marker_at(lines: &[&str], i: usize) -> bool {
    let line = clean(lines[i]);
    if line.is_empty() {
        return false;
    }
    if is_attribution(&line) || is_original_message_separator(&line) {
        return true;
    }
    // Gmail wraps a long attribution (`On …, Name <` / `address> wrote:`) over two lines.
    if starts_attribution(&line) {
        if let Some(next) = lines.get(i + 1) {
            if is_attribution(&format!("{line} {}", clean(next))) {
                return true;
            }
        }
    }
    // The next two non-blank lines.
    let following = || {
        lines[i + 1..]
            .iter()
            .map(|l| clean(l))
            .filter(|l| !l.is_empty())
            .take(2)
            .collect::<Vec<_>>()
    };
    // Outlook's plain-text reply: a rule of underscores, then the original's `From:` line.
    if line.len() >= 10 && line.chars().all(|c| c == '_') {
        return following()
            .first()
            .is_some_and(|l| FROM_NAMES.iter().any(|n| header_named(l, n)));
    }
    // Outlook's header block without the rule: `From: …` directly followed by `Sent: …`
    // (the `From:` value may wrap onto a second line).
    OUTLOOK_HEADERS.iter().any(|(from, sent)| {
        header_named(&line, from) && following().iter().any(|l| header_named(l, sent))
    })
}

/// `From:` in the languages of the Outlook header blocks recognised.
const FROM_NAMES: [&str; 3] = ["From", "Von", "De"];

/// The first two lines of an Outlook header block, per language.
const OUTLOOK_HEADERS: [(&str, &str); 3] =
    [("From", "Sent"), ("Von", "Gesendet"), ("De", "Envoyé")];

/// Whether `line` is a `Name: value` header line (French puts a space before the colon).
fn header_named(line: &str, name: &str) -> bool {
    let line = line.trim_start_matches('*');
    line.get(..name.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(name))
        && line[name.len()..].trim_start().starts_with(':')
}

fn starts_attribution(line: &str) -> bool {
    ["On ", "Am ", "Le "].iter().any(|p| line.starts_with(p))
}

/// `On <date>, <name> wrote:`, `Am <date> schrieb <name>:`, `Le <date>, <name> a écrit :`.
/// A date is required (a digit), so that "On Monday I wrote:" in a customer's text is kept.
fn is_attribution(line: &str) -> bool {
    let has_digit = line.chars().any(|c| c.is_ascii_digit());
    let english = line.starts_with("On ") && line.ends_with("wrote:");
    let german = line.starts_with("Am ") && line.contains(" schrieb") && line.ends_with(':');
    let french =
        line.starts_with("Le ") && (line.ends_with("a écrit :") || line.ends_with("a écrit:"));
    has_digit && (english || german || french)
}

/// `-----Original Message-----` and its translations.
fn is_original_message_separator(line: &str) -> bool {
    if !(line.starts_with("--") && line.ends_with("--")) {
        return false;
    }
    let inner = line.trim_matches('-').trim().to_lowercase();
    [
        "original message",
        "ursprüngliche nachricht",
        "message d'origine",
        "mensaje original",
    ]
    .contains(&inner.as_str())
}

fn is_quoted_line(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// The start of a block of `>` lines (blank lines allowed) that ends the body, with the
/// attribution line just above it (`Sample Support wrote:`) if there is one.
fn trailing_quote_block(lines: &[&str]) -> Option<usize> {
    let mut end = lines.len();
    while end > 0 && lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    if end == 0 || !is_quoted_line(lines[end - 1]) {
        return None;
    }
    let mut start = end - 1;
    let mut i = start;
    while i > 0 {
        let line = lines[i - 1];
        if is_quoted_line(line) {
            start = i - 1;
        } else if !line.trim().is_empty() {
            break;
        }
        i -= 1;
    }
    let above = lines[..start].iter().rposition(|l| !l.trim().is_empty());
    if let Some(a) = above {
        let line = clean(lines[a]);
        let introduces = line.ends_with(':')
            && ["wrote", "schrieb", "écrit"]
                .iter()
                .any(|w| line.contains(w));
        if introduces {
            start = a;
        }
    }
    Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(body: &str) -> (String, Option<String>) {
        let s = split_quoted(body);
        (s.text, s.quoted)
    }

    #[test]
    fn keeps_a_body_without_markers_whole_and_trimmed() {
        assert_eq!(
            split("\r\n  Hello,\r\nmy order is late.\r\n\r\n"),
            ("Hello,\nmy order is late.".into(), None)
        );
        assert_eq!(split(""), (String::new(), None));
    }

    #[test]
    fn splits_at_an_english_attribution_line() {
        let body = "Thanks!\n\nOn Fri, 20 Nov 2026 at 11:00, Sample Support wrote:\n> Fixed.\n";
        assert_eq!(
            split(body),
            (
                "Thanks!".into(),
                Some("On Fri, 20 Nov 2026 at 11:00, Sample Support wrote:\n> Fixed.".into())
            )
        );
    }

    #[test]
    fn splits_at_an_attribution_wrapped_over_two_lines() {
        let body = "Photo attached.\n\nOn Fri, Nov 20, 2026 at 11:00 AM Sample Support <\nsupport@sample.example> wrote:\n\n> Could you send a photo?\n";
        let (text, quoted) = split(body);
        assert_eq!(text, "Photo attached.");
        assert!(quoted
            .unwrap()
            .starts_with("On Fri, Nov 20, 2026 at 11:00 AM Sample Support <\nsupport@"));
    }

    #[test]
    fn splits_at_a_german_attribution_line() {
        let body = "Danke!\n\nAm 20.11.2026 um 11:00 schrieb Sample Support <support@sample.example>:\n> Erledigt.";
        assert_eq!(split(body).0, "Danke!");
        assert!(split(body).1.unwrap().starts_with("Am 20.11.2026"));
    }

    #[test]
    fn splits_at_a_french_attribution_line_with_a_no_break_space() {
        let body = "Merci !\n\nLe ven. 20 nov. 2026 à 11:00, Sample Support <support@sample.example> a écrit\u{a0}:\n> C'est corrigé.";
        assert_eq!(split(body).0, "Merci !");
        assert!(split(body).1.unwrap().starts_with("Le ven. 20 nov. 2026"));
    }

    #[test]
    fn ignores_attribution_like_sentences_without_a_date() {
        let body = "On Monday I wrote:\nmy order never arrived.";
        assert_eq!(split(body), (body.into(), None));
    }

    #[test]
    fn splits_at_an_original_message_separator() {
        let body = "See below.\n\n-----Original Message-----\nFrom: Sample Support\nSent: Friday\n\nFixed.";
        assert_eq!(split(body).0, "See below.");
        assert!(split(body)
            .1
            .unwrap()
            .starts_with("-----Original Message-----\nFrom:"));
        let de = "Siehe unten.\n\n-----Ursprüngliche Nachricht-----\nVon: Sample Support\n";
        assert_eq!(split(de).0, "Siehe unten.");
        assert!(split(de)
            .1
            .unwrap()
            .starts_with("-----Ursprüngliche Nachricht-----"));
    }

    #[test]
    fn splits_at_an_outlook_rule_followed_by_from() {
        let body = "Works now.\n\n________________________________\nFrom: Sample Support <support@sample.example>\nSent: Friday, November 20, 2026 11:00 AM\n\nFixed.";
        assert_eq!(split(body).0, "Works now.");
        assert!(split(body)
            .1
            .unwrap()
            .starts_with("________________________________\nFrom:"));
    }

    #[test]
    fn keeps_an_underscore_rule_not_followed_by_from() {
        let body = "Name: ________________\nSigned: ________________";
        assert_eq!(split(body), (body.into(), None));
    }

    #[test]
    fn splits_at_an_outlook_header_block() {
        let body = "Works now.\n\nFrom: Sample Support <support@sample.example>\nSent: Friday, November 20, 2026 11:00 AM\nTo: Jordan\nSubject: Invoice\n\nFixed.";
        assert_eq!(split(body).0, "Works now.");
        assert!(split(body).1.unwrap().starts_with("From: Sample Support"));
        let de = "Geht.\n\nVon: Sample Support\nGesendet: Freitag, 20. November 2026 11:00\n";
        assert_eq!(split(de).0, "Geht.");
        let fr = "Ça marche.\n\nDe : Sample Support\nEnvoyé : vendredi 20 novembre 2026 11:00\n";
        assert_eq!(split(fr).0, "Ça marche.");
    }

    #[test]
    fn keeps_a_forwarded_header_block_without_sent() {
        let body = "Please help.\n\n---------- Forwarded message ----------\nFrom: Shop <shop@example.com>\nDate: May 8, 2005\n\nYour order";
        assert_eq!(split(body), (body.into(), None));
    }

    #[test]
    fn splits_at_a_trailing_block_of_quoted_lines() {
        let body = "Yes, please.\n\nSample Support wrote:\n> Shall we refund?\n>\n> Sam\n\n";
        assert_eq!(
            split(body),
            (
                "Yes, please.".into(),
                Some("Sample Support wrote:\n> Shall we refund?\n>\n> Sam".into())
            )
        );
        let bare = "Yes.\n> Shall we refund?\n> Sam";
        assert_eq!(
            split(bare),
            ("Yes.".into(), Some("> Shall we refund?\n> Sam".into()))
        );
    }

    #[test]
    fn keeps_inline_answers_between_quoted_lines() {
        let body = "> Which size?\nLarge.\n> Which colour?\nBlue.";
        assert_eq!(split(body), (body.into(), None));
    }

    #[test]
    fn keeps_a_body_that_starts_with_a_marker() {
        let body = "On Fri, 20 Nov 2026 at 11:00, Sample Support wrote:\n> Fixed?\n";
        assert_eq!(split(body), (body.trim().into(), None));
        let all_quoted = "> only\n> quotes";
        assert_eq!(split(all_quoted), (all_quoted.into(), None));
    }

    #[test]
    fn cuts_at_the_first_of_several_markers() {
        let body = "New.\n\nOn Fri, 20 Nov 2026 at 11:00, B wrote:\n> Older.\n> -----Original Message-----\n> Oldest.";
        assert_eq!(split(body).0, "New.");
        assert!(split(body).1.unwrap().starts_with("On Fri, 20 Nov 2026"));
    }
}
