//! Finding personal data a company should not discuss in public: email addresses, phone numbers,
//! IBANs, payment card numbers and configured patterns (customer or order numbers).
//!
//! The detector only says *which kinds* a text contains, never where or what, so nothing it
//! returns repeats the data. It errs on the side of silence for numbers that merely look like
//! data: dates, times, prices, years, versions and short counts are not phone numbers, and an
//! IBAN or card number only counts when its check digits (ISO 13616 mod-97, Luhn) are right.
//!
//! Detection runs in a fixed order and each step blanks out what it found (and what it knows is
//! something else) before the next one looks, so one number is reported as one kind: email
//! addresses, then (after blanking URLs and @handles) IBANs, configured patterns (then
//! #hashtags are blanked), card numbers and finally phone numbers.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::model::{Direction, Message, Visibility};
use crate::workflow::PersonalDataKind;

/// The personal-data settings: patterns beyond the built-in kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonalDataSettings {
    /// Configured patterns (none by default).
    #[serde(default)]
    pub patterns: Vec<NamedPattern>,
}

/// A configured pattern, reported as [`PersonalDataKind::Pattern`] with its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedPattern {
    /// The name reported when it matches (e.g. `order_number`).
    pub name: String,
    /// A regular expression in the `regex` crate's syntax, matched case-insensitively
    /// (`(?-i)` turns that off), e.g. `\b(?:order|bestellung)\s*#?\s*\d{6,}\b`.
    pub regex: String,
}

/// Why the personal-data settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonalDataError {
    /// A pattern has an empty name.
    #[error("a personal-data pattern has an empty name")]
    EmptyName,
    /// Two patterns have the same name.
    #[error("personal-data pattern `{0}` is configured twice")]
    DuplicateName(String),
    /// A pattern's regex does not compile.
    #[error("personal-data pattern `{name}` is not a valid regex: {reason}")]
    InvalidRegex {
        /// The pattern's name.
        name: String,
        /// What the regex compiler said.
        reason: String,
    },
    /// A pattern's regex matches the empty string, so it would flag every text.
    #[error("personal-data pattern `{0}` matches the empty string (it would flag every text)")]
    MatchesEmpty(String),
}

/// Finds the kinds of personal data in a text. Build it once from the settings and reuse it.
#[derive(Debug, Clone, Default)]
pub struct PersonalDataDetector {
    patterns: Vec<(String, Regex)>,
}

impl PersonalDataDetector {
    /// A detector for the built-in kinds and the configured patterns; fails on a bad pattern,
    /// naming it.
    pub fn new(settings: &PersonalDataSettings) -> Result<Self, PersonalDataError> {
        let mut names = BTreeSet::new();
        let mut patterns = Vec::with_capacity(settings.patterns.len());
        for pattern in &settings.patterns {
            let name = pattern.name.trim();
            if name.is_empty() {
                return Err(PersonalDataError::EmptyName);
            }
            if !names.insert(name.to_string()) {
                return Err(PersonalDataError::DuplicateName(name.to_string()));
            }
            let regex = RegexBuilder::new(&pattern.regex)
                .case_insensitive(true)
                .build()
                .map_err(|e| PersonalDataError::InvalidRegex {
                    name: name.to_string(),
                    reason: e.to_string(),
                })?;
            if regex.is_match("") {
                return Err(PersonalDataError::MatchesEmpty(name.to_string()));
            }
            patterns.push((name.to_string(), regex));
        }
        Ok(PersonalDataDetector { patterns })
    }

    /// The kinds of personal data in `text`, sorted and without duplicates.
    pub fn detect(&self, text: &str) -> Vec<PersonalDataKind> {
        let mut found = BTreeSet::new();
        let mut masked = text.to_string();

        // Emails first (a URL may contain an address, a handle follows `@`).
        if mask_all(&mut masked, &EMAIL) {
            found.insert(PersonalDataKind::EmailAddress);
        }
        mask_all(&mut masked, &URL);
        mask_all(&mut masked, &HANDLE);

        let ibans = iban_ranges(&masked);
        if !ibans.is_empty() {
            found.insert(PersonalDataKind::Iban);
            mask(&mut masked, ibans);
        }

        for (name, regex) in &self.patterns {
            if regex.is_match(text) {
                found.insert(PersonalDataKind::Pattern(name.clone()));
            }
            // An order number is not also a phone or card number.
            mask_all(&mut masked, regex);
        }
        mask_all(&mut masked, &HASHTAG);

        let cards = card_ranges(&masked);
        if !cards.is_empty() {
            found.insert(PersonalDataKind::CardNumber);
            mask(&mut masked, cards);
        }

        if has_phone_number(&masked) {
            found.insert(PersonalDataKind::PhoneNumber);
        }
        found.into_iter().collect()
    }
}

/// The personal data in a message the public can see: only public messages from the customer
/// are looked at (private messages and the company's own messages return nothing).
pub fn message_personal_data(
    detector: &PersonalDataDetector,
    message: &Message,
) -> Vec<PersonalDataKind> {
    if message.visibility != Visibility::Public || message.direction != Direction::Inbound {
        return Vec::new();
    }
    let mut kinds: BTreeSet<PersonalDataKind> =
        detector.detect(&message.text).into_iter().collect();
    if let Some(subject) = &message.subject {
        kinds.extend(detector.detect(subject));
    }
    kinds.into_iter().collect()
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in personal-data regex compiles")
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)[\p{L}\p{N}._%+\-]+@[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?)*\.\p{L}{2,}",
    )
});
static URL: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\b(?:https?://|www\.)\S+"));
static HANDLE: LazyLock<Regex> = LazyLock::new(|| regex(r"@\w+"));
static HASHTAG: LazyLock<Regex> = LazyLock::new(|| regex(r"#\w+"));
/// Where an IBAN may start: a country code and two check digits at a word start.
static IBAN_START: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\b[a-z]{2}[0-9]{2}"));
/// A run of digits in groups split by single spaces or dashes, not touching other word
/// characters.
static DIGIT_RUN: LazyLock<Regex> = LazyLock::new(|| regex(r"\b\d+(?:[ \-]\d+)*\b"));
/// A phone-number candidate: an optional `+` or `(`, then digits and parentheses with single
/// separators (space, dash, slash, dot; a slash or dash may have a space on each side) between
/// them.
static PHONE_CANDIDATE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"[+(]?\d(?:[\d()]|(?:[ ./\-]| [/\-] )[\d(])*"));
/// A date at the start: day, month and year (or month, day and year) with one separator, or
/// month and year with a slash (`01/2024`).
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^(?:\d{1,2}\.\d{1,2}\.\d{2,4}|\d{1,2}/\d{1,2}/\d{2,4}|\d{1,2}-\d{1,2}-\d{2,4}|\d{1,2}/\d{2,4})(?:$|\s)",
    )
});
/// A number with thousands separators (`+1.000.000`).
static THOUSANDS: LazyLock<Regex> = LazyLock::new(|| regex(r"^\+?\d{1,3}(?:[.,]\d{3})+$"));
/// North American numbers without the country code: `(555) 123-4567`, `555-123-4567`.
static NANP: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[\-.])[2-9]\d{2}[\-.]\d{4}$"));

/// Blanks every match of `regex`; returns whether there was one.
fn mask_all(text: &mut String, regex: &Regex) -> bool {
    let ranges: Vec<Range<usize>> = regex.find_iter(text).map(|m| m.range()).collect();
    let any = !ranges.is_empty();
    mask(text, ranges);
    any
}

/// Replaces each byte range (on char boundaries) with as many spaces, keeping offsets valid.
fn mask(text: &mut String, ranges: Vec<Range<usize>>) {
    for range in ranges {
        let blanks = " ".repeat(range.len());
        text.replace_range(range, &blanks);
    }
}

/// IBAN lengths by country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HN", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

fn iban_length(country: &str) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(code, _)| code.eq_ignore_ascii_case(country))
        .map(|&(_, len)| len)
}

/// Byte ranges of valid IBANs: a registered country code, its exact length, written compactly
/// or in groups of four split by single spaces, ending at a word boundary, with a valid mod-97 check.
fn iban_ranges(text: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut search_from = 0;
    while let Some(start) = IBAN_START.find_at(text, search_from) {
        let begin = start.start();
        let Some(len) = iban_length(&text[begin..begin + 2]) else {
            search_from = start.end();
            continue;
        };
        match iban_at(text, begin, len) {
            Some(end) => {
                ranges.push(begin..end);
                search_from = end;
            }
            None => search_from = start.end(),
        }
    }
    ranges
}

/// The end of a valid IBAN of `len` characters starting at `begin`, if there is one.
fn iban_at(text: &str, begin: usize, len: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut compact = String::with_capacity(len);
    let mut i = begin;
    while compact.len() < len {
        let b = *bytes.get(i)?;
        if b.is_ascii_alphanumeric() {
            compact.push(b.to_ascii_uppercase() as char);
            i += 1;
        } else if b == b' '
            && compact.len().is_multiple_of(4)
            && bytes.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)
        {
            // Printed IBANs are grouped by four; other spaces end it (it does not run on into
            // the words after it).
            i += 1;
        } else {
            return None;
        }
    }
    // It must end there, not run on into more letters or digits.
    if text[i..].chars().next().is_some_and(char::is_alphanumeric) {
        return None;
    }
    iban_check(&compact).then_some(i)
}

/// The ISO 13616 check: the IBAN with its first four characters moved to the end, letters as
/// 10..=35, is 1 modulo 97.
fn iban_check(iban: &str) -> bool {
    if iban.len() < 5 || !iban[2..4].bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let rearranged = iban[4..].bytes().chain(iban[..4].bytes());
    let mut rest: u32 = 0;
    for b in rearranged {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rest = if value >= 10 {
            (rest * 100 + value) % 97
        } else {
            (rest * 10 + value) % 97
        };
    }
    rest == 1
}

/// Byte ranges of payment card numbers: 13 to 19 digits, written compactly or in groups
/// (the first of four digits, the others of three to six, one separator throughout), with a
/// valid Luhn check. A longer unbroken run of digits is never split into a card number; a
/// grouped one may have other numbers beside it (an expiry date after the number).
fn card_ranges(text: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    for run in DIGIT_RUN.find_iter(text) {
        // The groups of the run with their byte ranges, and the separator before each.
        let mut groups: Vec<(Range<usize>, Option<u8>)> = Vec::new();
        let mut start = run.start();
        let mut sep = None;
        for (i, b) in run.as_str().bytes().enumerate() {
            if !b.is_ascii_digit() {
                let at = run.start() + i;
                groups.push((start..at, sep));
                sep = Some(b);
                start = at + 1;
            }
        }
        groups.push((start..run.end(), sep));

        let mut first = 0;
        while first < groups.len() {
            match card_window(text, &groups[first..]) {
                Some((range, used)) => {
                    ranges.push(range);
                    first += used;
                }
                None => first += 1,
            }
        }
    }
    ranges
}

/// A card number made of the groups at the start of `groups`, with how many it used.
fn card_window(text: &str, groups: &[(Range<usize>, Option<u8>)]) -> Option<(Range<usize>, usize)> {
    let (head, _) = &groups[0];
    if (13..=19).contains(&head.len()) && luhn(&text[head.clone()]) {
        return Some((head.clone(), 1));
    }
    if head.len() != 4 {
        return None;
    }
    let sep = groups.get(1)?.1;
    let mut digits = text[head.clone()].to_string();
    // Longest first, so `4111 1111 1111 1111 111` is not cut short.
    let mut best = None;
    for (n, (range, group_sep)) in groups.iter().enumerate().skip(1) {
        if *group_sep != sep || !(3..=6).contains(&range.len()) || digits.len() >= 19 {
            break;
        }
        digits.push_str(&text[range.clone()]);
        if (13..=19).contains(&digits.len()) && luhn(&digits) {
            best = Some((head.start..range.end, n + 1));
        }
    }
    best
}

/// The Luhn check of a string of ASCII digits.
fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// Whether the text holds a phone number: international (`+49 30 1234567`, `0049 …`), national
/// with a leading zero (`030 1234567`, `(030) 123 45 67`, `0171/1234567`, `06.12.34.56.78`), or
/// North American (`(555) 123-4567`), with 7 to 15 digits.
fn has_phone_number(text: &str) -> bool {
    PHONE_CANDIDATE.find_iter(text).any(|m| {
        // Part of a word, or the end of a longer number (`1.0301234567`).
        let mut before = text[..m.start()].chars().rev();
        match (before.next(), before.next()) {
            (Some(c), _) if c.is_alphanumeric() || c == '_' => return false,
            (Some('.' | ','), Some(d)) if d.is_ascii_digit() => return false,
            _ => {}
        }
        let candidate = m.as_str().trim_end_matches(|c: char| !c.is_ascii_digit());
        let after = text[m.start() + candidate.len()..].chars().next();
        // Part of a word, or a decimal (`0301234567,50`).
        if after.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return false;
        }
        let rest = &text[m.start() + candidate.len()..];
        if (rest.starts_with('.') || rest.starts_with(','))
            && rest[1..].starts_with(|c: char| c.is_ascii_digit())
        {
            return false;
        }
        let mut candidate = candidate;
        loop {
            if is_phone_number(candidate) {
                return true;
            }
            // Another number may follow it (`0171 1234567 - 2 mal`): try without the last group.
            match candidate.rfind(|c: char| !c.is_ascii_digit()) {
                Some(cut) if cut > 0 => {
                    candidate = candidate[..cut].trim_end_matches(|c: char| !c.is_ascii_digit());
                }
                _ => return false,
            }
        }
    })
}

/// Whether a candidate (digits, parentheses, single separators) reads as a phone number.
fn is_phone_number(candidate: &str) -> bool {
    if NANP.is_match(candidate) {
        return true;
    }
    let opens = candidate.matches('(').count();
    let closes = candidate.matches(')').count();
    if opens != closes || opens > 1 || candidate.find('(') > candidate.find(')') {
        return false;
    }
    // The trunk zero of `+49 (0)30 …` is dialled only nationally: not a digit of the number.
    let plain: String = candidate
        .replace("(0)", " ")
        .chars()
        .filter(|c| *c != '(' && *c != ')')
        .collect();
    let plain = plain.trim();
    let international = plain.starts_with('+');
    if !international && !plain.starts_with('0') {
        return false;
    }
    if DATE.is_match(plain) || THOUSANDS.is_match(plain) {
        return false;
    }
    let groups: Vec<&str> = plain
        .trim_start_matches('+')
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    // Counting, scores and lists (`0 8 15`, `0-1-2-3`): no one-digit group after the first.
    if groups.iter().skip(1).any(|g| g.len() < 2) {
        return false;
    }
    // Dots are a separator only throughout (`06.12.34.56.78`), or after the country code:
    // mixed with others they are dates, times and versions (`08.00-17.00`, `01.02.2024 10`).
    let separators = |s: &str| -> Vec<char> {
        s.trim_start_matches('+')
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect()
    };
    if separators(plain).contains(&'.') {
        let national_part = if international {
            plain[1..].trim_start_matches(|c: char| c.is_ascii_digit())
        } else {
            plain
        };
        if separators(national_part.trim_start())
            .iter()
            .any(|c| *c != '.')
        {
            return false;
        }
    }
    let digits: usize = groups.iter().map(|g| g.len()).sum();
    let significant = digits - usize::from(plain.starts_with("00"));
    (7..=15).contains(&significant)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::ids::MessageId;
    use crate::model::{Author, ChannelKind, Conversation, MessageEvent};

    fn detector() -> PersonalDataDetector {
        PersonalDataDetector::new(&PersonalDataSettings {
            patterns: vec![NamedPattern {
                name: "order_number".into(),
                regex: r"\b(?:order|bestellung)\s*#?\s*\d{6,}\b".into(),
            }],
        })
        .unwrap()
    }

    fn kinds(text: &str) -> Vec<PersonalDataKind> {
        detector().detect(text)
    }

    fn order() -> PersonalDataKind {
        PersonalDataKind::Pattern("order_number".into())
    }

    #[test]
    fn finds_nothing_in_plain_text() {
        assert!(kinds("Hallo, mein Paket ist noch nicht angekommen :(").is_empty());
        assert!(kinds("").is_empty());
    }

    #[test]
    fn finds_email_addresses() {
        assert_eq!(
            kinds("Schreibt mir an max.mustermann@example.de bitte"),
            vec![PersonalDataKind::EmailAddress]
        );
        assert_eq!(
            kinds("my address is Alex+support@mail.example.co.uk."),
            vec![PersonalDataKind::EmailAddress]
        );
        assert_eq!(
            kinds("jürgen@müller.de"),
            vec![PersonalDataKind::EmailAddress]
        );
    }

    #[test]
    fn handles_and_urls_are_not_email_addresses() {
        assert!(kinds("@crossdesk help me please").is_empty());
        assert!(kinds("see https://example.com/user@home/x and @brand_de").is_empty());
        assert!(kinds("name@localhost is not a mail domain").is_empty());
    }

    #[test]
    fn finds_international_phone_numbers() {
        for text in [
            "Ruft mich an: +49 30 1234567",
            "call me at +49 (0)30 123 45 67 tomorrow",
            "+44 20 7946 0958",
            "+491711234567",
            "Meine Nummer: 0049 171 1234567",
            "+1 (555) 123-4567",
        ] {
            assert_eq!(kinds(text), vec![PersonalDataKind::PhoneNumber], "{text}");
        }
    }

    #[test]
    fn finds_national_phone_numbers() {
        for text in [
            "Tel. 030 1234567",
            "erreichbar unter 0171-1234567",
            "Festnetz (030) 123 45 67, ab 18 Uhr",
            "0171/1234567",
            "Handy 0151 2345 6789.",
            "appelez le 06.12.34.56.78",
            "call (555) 234-5678 or 555-234-5678",
            "Mobil: +49 (0) 171 / 123 45 67",
            "Tel 030/12 34 56-78",
            "Hotline 0800 - 330 1000",
            "Ruf 0171 1234567 - 2 mal versucht",
        ] {
            assert_eq!(kinds(text), vec![PersonalDataKind::PhoneNumber], "{text}");
        }
    }

    #[test]
    fn numbers_that_are_not_phone_numbers() {
        for text in [
            "2 for 1 deal!!",
            "Support 24/7? Not really.",
            "Seit 2019 Kunde, 1000 Punkte",
            "Update auf v2.3.1 hat alles kaputt gemacht",
            "Bestellt am 01.02.2024, geliefert am 05/02/2024 oder 01-15-2024",
            "Termin 01.02.2024 10:30 Uhr",
            "Geöffnet 08.00-17.00 Uhr",
            "Kostet 0,99 € bzw. 0.99 USD, früher 1.299,00 €",
            "+1.000.000 Follower, +20% mehr",
            "0815 Service",
            "Zimmer 012345",
            "Version 0.12.3",
            "call 123-4567",
            "#0301234567 trending",
            "ID0301234567",
            "Score 0-1-2-3-4-5-6",
            "0 8 15 4711 0815",
            "Kundennummer 0012345, PLZ 01067 Dresden",
            "Flug LH 0401 am 05.06.2024 08:30",
            "Termine 01.02.2024 - 05.02.2024",
            "ISBN 978-3-16-148410-0, IP 192.168.0.100",
            "Version 10.0.19045.3693",
            "Seit 0:00 Uhr offline, 0/10",
            "Seit 05/12/2024 10 Mal angerufen, 01-15-2024 10:30",
            "seit 01/2024 12 Anrufe",
            "de12 bitte rufen sie mich an, danke euch",
        ] {
            assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
        }
    }

    #[test]
    fn finds_ibans_with_valid_check_digits() {
        for text in [
            "IBAN: DE89 3704 0044 0532 0130 00",
            "bitte auf DE89370400440532013000 überweisen",
            "my iban is gb29 nwbk 6016 1331 9268 19.",
            "AT61 1904 3002 3457 3201 DANKE",
            "CH93 0076 2011 6238 5295 7",
        ] {
            assert_eq!(kinds(text), vec![PersonalDataKind::Iban], "{text}");
        }
    }

    #[test]
    fn rejects_ibans_with_wrong_check_digits_or_length() {
        for text in [
            "DE88 3704 0044 0532 0130 00",
            "DE89 3704 0044 0532 0130 01",
            "DE89 3704 0044 0532 0130 0",
            "DE89370400440532013000123",
            "XX89 3704 0044 0532 0130 00",
        ] {
            assert!(
                !kinds(text).contains(&PersonalDataKind::Iban),
                "{text}: {:?}",
                kinds(text)
            );
        }
    }

    #[test]
    fn finds_card_numbers_with_valid_luhn() {
        for text in [
            "Karte 4111 1111 1111 1111 wurde doppelt belastet",
            "card 4111-1111-1111-1111 exp 12/27",
            "5500005555555559",
            "Amex 3782 822463 10005",
            "4111 1111 1111 1111 12/27",
        ] {
            assert_eq!(kinds(text), vec![PersonalDataKind::CardNumber], "{text}");
        }
    }

    #[test]
    fn rejects_card_numbers_with_invalid_luhn_or_in_longer_runs() {
        for text in [
            "Karte 4111 1111 1111 1112",
            "4111111111111112",
            "Sendungsnummer 00340434161094042557",
            "41111111111111110000",
            "4111 1111-1111 1111",
            "4111111111111111abc",
        ] {
            assert!(
                !kinds(text).contains(&PersonalDataKind::CardNumber),
                "{text}: {:?}",
                kinds(text)
            );
        }
    }

    #[test]
    fn finds_configured_patterns_case_insensitively() {
        assert_eq!(kinds("Wo bleibt Bestellung #1234567?"), vec![order()]);
        assert_eq!(kinds("ORDER 98765432 never arrived"), vec![order()]);
        assert!(kinds("order 123 arrived").is_empty());
    }

    #[test]
    fn order_numbers_are_not_also_phone_numbers() {
        assert_eq!(kinds("Bestellung 01234567890 fehlt"), vec![order()]);
    }

    #[test]
    fn reports_every_kind_once_sorted() {
        let text = "Mail a@b.de, c@d.de, Tel 030 1234567, IBAN DE89370400440532013000, \
                    Bestellung 1234567, Karte 4111111111111111";
        assert_eq!(
            kinds(text),
            vec![
                PersonalDataKind::EmailAddress,
                PersonalDataKind::PhoneNumber,
                PersonalDataKind::Iban,
                PersonalDataKind::CardNumber,
                order(),
            ]
        );
    }

    #[test]
    fn default_detector_has_no_patterns() {
        let detector = PersonalDataDetector::default();
        assert!(detector.detect("Bestellung 1234567").is_empty());
        let settings: PersonalDataSettings = serde_json::from_str("{}").unwrap();
        assert!(settings.patterns.is_empty());
    }

    #[test]
    fn settings_reject_unknown_fields() {
        assert!(serde_json::from_str::<PersonalDataSettings>(r#"{"pattern":[]}"#).is_err());
        assert!(serde_json::from_str::<PersonalDataSettings>(
            r#"{"patterns":[{"name":"a","regex":"x","flags":"i"}]}"#
        )
        .is_err());
    }

    #[test]
    fn bad_regex_is_an_error_naming_the_pattern() {
        let settings = PersonalDataSettings {
            patterns: vec![NamedPattern {
                name: "customer_number".into(),
                regex: r"KD-(\d+".into(),
            }],
        };
        let err = PersonalDataDetector::new(&settings).unwrap_err();
        assert!(
            matches!(&err, PersonalDataError::InvalidRegex { name, .. } if name == "customer_number")
        );
        assert!(err.to_string().contains("`customer_number`"), "{err}");
    }

    #[test]
    fn rejects_empty_duplicate_and_match_everything_patterns() {
        let pattern = |name: &str, regex: &str| NamedPattern {
            name: name.into(),
            regex: regex.into(),
        };
        let build = |patterns| PersonalDataDetector::new(&PersonalDataSettings { patterns });
        assert_eq!(
            build(vec![pattern(" ", "x")]).unwrap_err(),
            PersonalDataError::EmptyName
        );
        assert_eq!(
            build(vec![pattern("a", "x"), pattern("a", "y")]).unwrap_err(),
            PersonalDataError::DuplicateName("a".into())
        );
        assert_eq!(
            build(vec![pattern("a", r"\d*")]).unwrap_err(),
            PersonalDataError::MatchesEmpty("a".into())
        );
    }

    fn message(visibility: Visibility, direction: Direction, text: &str) -> Message {
        Message {
            id: MessageId::generate(),
            channel: ChannelKind::Twitter,
            platform_message_id: Some("1".into()),
            conversation: Conversation::DirectThread {
                account_id: "a".into(),
                user_id: "c".into(),
            },
            direction,
            event: MessageEvent::Created,
            author: Author::default(),
            text: text.into(),
            attachments: Vec::new(),
            visibility,
            sent_at: Utc::now(),
            received_at: Utc::now(),
            replies_to: Vec::new(),
            ticket_ref: None,
            subject: None,
            email: None,
            raw: None,
            signature_unverified: false,
            personal_data: Vec::new(),
            internal_note: false,
            monitoring: false,
            delivery: None,
        }
    }

    #[test]
    fn message_personal_data_looks_at_public_inbound_messages_only() {
        let detector = detector();
        let text = "@brand my card 4111 1111 1111 1111 was charged twice";
        assert_eq!(
            message_personal_data(
                &detector,
                &message(Visibility::Public, Direction::Inbound, text)
            ),
            vec![PersonalDataKind::CardNumber]
        );
        assert!(message_personal_data(
            &detector,
            &message(Visibility::Private, Direction::Inbound, text)
        )
        .is_empty());
        assert!(message_personal_data(
            &detector,
            &message(Visibility::Public, Direction::Outbound, text)
        )
        .is_empty());
    }
}
