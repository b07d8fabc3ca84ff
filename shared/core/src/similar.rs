//! Finding tickets with a similar question: a lexical similarity over the customers' words.
//!
//! Text is [`normalize`]d into terms (lower case, words only, no URLs, handles, email addresses
//! or bare numbers, no English or German stop words, Snowball-stemmed in the language
//! [`detect_language`] picks, umlauts folded); each ticket stores its terms as its
//! [`search_text`]; a [`SimilarityIndex`] over those ranks tickets for a new message by BM25.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use regex::Regex;
use rust_stemmers::{Algorithm, Stemmer};

use crate::ids::TicketId;
use crate::workflow::SimilarTicket;

/// The most bytes a [`search_text`] holds.
pub const SEARCH_TEXT_MAX_BYTES: usize = 4096;

/// How many similar tickets a ticket shows.
pub const SIMILAR_LIMIT: usize = 5;

/// BM25's term-frequency saturation.
const K1: f64 = 1.2;
/// BM25's document-length normalization.
const B: f64 = 0.75;
/// Longer "words" are hashes, tokens or base64, not words.
const MAX_TERM_CHARS: usize = 40;

/// A language the normalizer knows stop words and a stemmer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// English.
    English,
    /// German.
    German,
}

impl Language {
    /// The ISO 639-1 code (`en`, `de`).
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::German => "de",
        }
    }

    fn stemmer(self) -> Stemmer {
        Stemmer::create(match self {
            Language::English => Algorithm::English,
            Language::German => Algorithm::German,
        })
    }
}

const ENGLISH_STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "but", "by", "can", "could", "did", "didn", "do", "does", "doesn",
    "don", "for", "from", "get", "got", "had", "has", "have", "he", "hello", "her", "hey", "hi",
    "him", "his", "how", "i", "if", "im", "in", "into", "is", "isn", "it", "its", "just", "ll",
    "me", "my", "no", "not", "now", "of", "on", "or", "our", "please", "re", "she", "so", "still",
    "than", "thank", "thanks", "that", "the", "their", "them", "then", "there", "these", "they",
    "this", "to", "too", "us", "ve", "very", "was", "wasn", "we", "were", "what", "when", "where",
    "which", "who", "why", "will", "with", "would", "you", "your",
];

const GERMAN_STOP_WORDS: &[&str] = &[
    "aber", "alle", "als", "also", "am", "an", "auch", "auf", "aus", "bei", "bin", "bis", "bitte",
    "da", "danke", "das", "dass", "dem", "den", "der", "des", "die", "dies", "diese", "dieser",
    "doch", "du", "durch", "ein", "eine", "einem", "einen", "einer", "eines", "er", "es", "euch",
    "euer", "fuer", "für", "hab", "habe", "haben", "hallo", "hat", "hatte", "ich", "ihr", "ihre",
    "im", "in", "ist", "ja", "jetzt", "kann", "kein", "keine", "man", "mein", "meine", "meinem",
    "meinen", "meiner", "mich", "mir", "mit", "nach", "nicht", "noch", "nur", "oder", "schon",
    "sehr", "sein", "seine", "sich", "sie", "sind", "so", "ueber", "um", "und", "uns", "unser",
    "von", "vor", "war", "was", "wie", "wir", "wird", "wo", "worden", "wurde", "werden", "zu",
    "zum", "zur", "über",
];

static ENGLISH_STOPS: LazyLock<HashSet<&str>> =
    LazyLock::new(|| ENGLISH_STOP_WORDS.iter().copied().collect());
static GERMAN_STOPS: LazyLock<HashSet<&str>> =
    LazyLock::new(|| GERMAN_STOP_WORDS.iter().copied().collect());

fn is_stop_word(word: &str) -> bool {
    ENGLISH_STOPS.contains(word) || GERMAN_STOPS.contains(word)
}

/// What is not words: URLs, email addresses and @handles.
static NOT_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:https?://|www\.)\S+|[\p{L}\p{N}._%+\-]+@[\p{L}\p{N}.\-]+|@\w+")
        .expect("built-in regex compiles")
});

/// The lower-case words of a text, without URLs, addresses, handles, numbers and one-letter
/// words.
fn words(text: &str) -> Vec<String> {
    let text = NOT_WORDS.replace_all(text, " ");
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !w.chars().all(|c| c.is_numeric()))
        .map(str::to_lowercase)
        .filter(|w| (2..=MAX_TERM_CHARS).contains(&w.chars().count()))
        .collect()
}

/// The language a text is evidently in, if it shows: the one with more of its own stop words
/// (words that are stop words in both count for neither); on a tie, German if the text has an
/// umlaut or ß; otherwise `None`.
pub fn language_evidence(text: &str) -> Option<Language> {
    let (mut english, mut german) = (0usize, 0usize);
    let words = words(text);
    for word in &words {
        let en = ENGLISH_STOPS.contains(word.as_str());
        let de = GERMAN_STOPS.contains(word.as_str());
        match (en, de) {
            (true, false) => english += 1,
            (false, true) => german += 1,
            _ => {}
        }
    }
    match english.cmp(&german) {
        std::cmp::Ordering::Greater => Some(Language::English),
        std::cmp::Ordering::Less => Some(Language::German),
        std::cmp::Ordering::Equal if words.iter().any(|w| w.contains(['ä', 'ö', 'ü', 'ß'])) => {
            Some(Language::German)
        }
        std::cmp::Ordering::Equal => None,
    }
}

/// The language of a text by [`language_evidence`], English when the text does not show.
pub fn detect_language(text: &str) -> Language {
    language_evidence(text).unwrap_or(Language::English)
}

/// Folds German umlauts and ß (`ä` → `a`, `ß` → `ss`), so a customer typing without them still
/// matches.
fn fold(term: &str) -> String {
    let mut folded = String::with_capacity(term.len());
    for c in term.chars() {
        match c {
            'ä' => folded.push('a'),
            'ö' => folded.push('o'),
            'ü' => folded.push('u'),
            'ß' => folded.push_str("ss"),
            c => folded.push(c),
        }
    }
    folded
}

/// The terms of a text, in order: lower-case words without URLs, email addresses, @handles,
/// numbers and stop words, stemmed in the text's [`detect_language`] and then umlaut-folded.
pub fn normalize(text: &str) -> Vec<String> {
    let stemmer = detect_language(text).stemmer();
    words(text)
        .into_iter()
        .filter(|w| !is_stop_word(w))
        .map(|w| fold(&stemmer.stem(&w)))
        .filter(|t| t.chars().count() >= 2)
        .collect()
}

/// What a ticket stores for similarity search: the terms of its texts (each normalized in its
/// own language) joined by spaces, the first ones kept up to [`SEARCH_TEXT_MAX_BYTES`], cut
/// between terms.
pub fn search_text<I, S>(texts: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    search_text_filled(texts).0
}

/// [`search_text`], and where it filled up, if it did: the position of the text a term of which
/// did not fit. No text after that one can change it (a caller may stop reading texts).
pub fn search_text_filled<I, S>(texts: I) -> (String, Option<usize>)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for (position, text) in texts.into_iter().enumerate() {
        if !extend_search_text(&mut out, text.as_ref()) {
            return (out, Some(position));
        }
    }
    (out, None)
}

/// Adds the terms of `text` to a search text built by [`search_text_filled`] from the texts
/// before it, as that function would; `false` when a term did not fit (the search text is
/// full, and no later text can change it).
pub fn extend_search_text(out: &mut String, text: &str) -> bool {
    for term in normalized(text).iter() {
        let needed = term.len() + usize::from(!out.is_empty());
        if out.len() + needed > SEARCH_TEXT_MAX_BYTES {
            return false;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(term);
    }
    true
}

/// How many texts' terms [`normalized`] remembers (twice that at most, in two generations).
/// With [`TERMS_CACHE_MAX_TEXT_BYTES`] this bounds the cache to a few MiB at the very worst,
/// inside the ticket writer Lambda's memory budget (peak RSS under 32 MB).
const TERMS_CACHE_TEXTS: usize = 1024;
/// Longer texts are normalized each time (they are few, and would make the cache large).
const TERMS_CACHE_MAX_TEXT_BYTES: usize = 1024;

/// Texts normalized recently: the current generation and the one before it. A ticket's search
/// text is rebuilt from all its customer messages on each new one, so the same texts come back.
#[derive(Default)]
struct TermsCache {
    current: HashMap<String, Arc<[String]>>,
    previous: HashMap<String, Arc<[String]>>,
}

static TERMS_CACHE: LazyLock<Mutex<TermsCache>> = LazyLock::new(Mutex::default);

/// [`normalize`], remembered for recently seen texts.
fn normalized(text: &str) -> Arc<[String]> {
    if text.len() > TERMS_CACHE_MAX_TEXT_BYTES {
        return normalize(text).into();
    }
    let cached = {
        let mut cache = TERMS_CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        match cache.current.get(text) {
            Some(terms) => Some(terms.clone()),
            None => match cache.previous.remove_entry(text) {
                Some((text, terms)) => {
                    cache.current.insert(text, terms.clone());
                    Some(terms)
                }
                None => None,
            },
        }
    };
    if let Some(terms) = cached {
        return terms;
    }
    let terms: Arc<[String]> = normalize(text).into();
    let mut cache = TERMS_CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if cache.current.len() >= TERMS_CACHE_TEXTS {
        cache.previous = std::mem::take(&mut cache.current);
    }
    cache.current.insert(text.to_owned(), terms.clone());
    terms
}

#[derive(Debug, Clone)]
struct Document {
    subject: String,
    term_freq: HashMap<String, u32>,
    len: usize,
}

/// Tickets' search texts, ranked by BM25 (k1 = 1.2, b = 0.75, idf = ln(1 + (N − n + 0.5) /
/// (n + 0.5))) against a query.
#[derive(Debug, Clone, Default)]
pub struct SimilarityIndex {
    docs: BTreeMap<TicketId, Document>,
    doc_freq: HashMap<String, usize>,
    total_len: usize,
}

impl SimilarityIndex {
    /// An empty index.
    pub fn new() -> Self {
        SimilarityIndex::default()
    }

    /// Adds a ticket with its subject (shown, not searched) and its [`search_text`], replacing
    /// what the index held for it.
    pub fn insert(&mut self, ticket_id: TicketId, subject: impl Into<String>, search_text: &str) {
        self.remove(&ticket_id);
        let mut term_freq: HashMap<String, u32> = HashMap::new();
        let mut len = 0;
        for term in search_text.split_whitespace() {
            *term_freq.entry(term.to_string()).or_default() += 1;
            len += 1;
        }
        for term in term_freq.keys() {
            *self.doc_freq.entry(term.clone()).or_default() += 1;
        }
        self.total_len += len;
        self.docs.insert(
            ticket_id,
            Document {
                subject: subject.into(),
                term_freq,
                len,
            },
        );
    }

    /// Removes a ticket; returns whether the index held it.
    pub fn remove(&mut self, ticket_id: &TicketId) -> bool {
        let Some(doc) = self.docs.remove(ticket_id) else {
            return false;
        };
        for term in doc.term_freq.keys() {
            if let Some(n) = self.doc_freq.get_mut(term) {
                *n -= 1;
                if *n == 0 {
                    self.doc_freq.remove(term);
                }
            }
        }
        self.total_len -= doc.len;
        true
    }

    /// How many tickets it holds.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The at most `limit` tickets most similar to the query text, best first (equal scores by
    /// ticket id), leaving out `exclude` (the ticket asking) and tickets sharing no term.
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        exclude: Option<&TicketId>,
    ) -> Vec<SimilarTicket> {
        let terms: BTreeSet<String> = normalize(query).into_iter().collect();
        if terms.is_empty() || self.docs.is_empty() || limit == 0 {
            return Vec::new();
        }
        let n = self.docs.len() as f64;
        let avg_len = (self.total_len as f64 / n).max(1.0);
        let idf: Vec<(&str, f64)> = terms
            .iter()
            .filter_map(|t| {
                let df = *self.doc_freq.get(t)? as f64;
                Some((t.as_str(), (1.0 + (n - df + 0.5) / (df + 0.5)).ln()))
            })
            .collect();
        if idf.is_empty() {
            return Vec::new();
        }

        let mut hits: Vec<SimilarTicket> = self
            .docs
            .iter()
            .filter(|(id, _)| Some(*id) != exclude)
            .filter_map(|(id, doc)| {
                let norm = K1 * (1.0 - B + B * doc.len as f64 / avg_len);
                let score: f64 = idf
                    .iter()
                    .filter_map(|(term, idf)| {
                        let tf = f64::from(*doc.term_freq.get(*term)?);
                        Some(idf * tf * (K1 + 1.0) / (tf + norm))
                    })
                    .sum();
                (score > 0.0).then(|| SimilarTicket {
                    ticket_id: id.clone(),
                    subject: doc.subject.clone(),
                    score,
                })
            })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.ticket_id.cmp(&b.ticket_id))
        });
        hits.truncate(limit);
        hits
    }
}

impl<S: Into<String>, T: AsRef<str>> FromIterator<(TicketId, S, T)> for SimilarityIndex {
    fn from_iter<I: IntoIterator<Item = (TicketId, S, T)>>(iter: I) -> Self {
        let mut index = SimilarityIndex::new();
        for (id, subject, search_text) in iter {
            index.insert(id, subject, search_text.as_ref());
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> TicketId {
        TicketId::parse(s).unwrap()
    }

    fn index(docs: &[(&str, &str)]) -> SimilarityIndex {
        docs.iter()
            .map(|(ticket, text)| (id(ticket), format!("subject {ticket}"), search_text([text])))
            .collect()
    }

    fn ids(hits: &[SimilarTicket]) -> Vec<&str> {
        hits.iter().map(|h| h.ticket_id.as_str()).collect()
    }

    #[test]
    fn normalize_drops_urls_handles_emails_numbers_and_stop_words() {
        assert_eq!(
            normalize("@brand Hi, my order 123456 https://x.co/abc is late! mail me a@b.de"),
            vec!["order", "late", "mail"]
        );
    }

    #[test]
    fn normalize_stems_english() {
        assert_eq!(normalize("refunds"), normalize("refunded"));
        assert_eq!(normalize("I want my refunds"), vec!["want", "refund"]);
    }

    #[test]
    fn normalize_stems_german_and_folds_umlauts() {
        assert_eq!(
            normalize("Meine Rechnungen sind doppelt abgebucht"),
            vec!["rechnung", "doppelt", "abgebucht"]
        );
        // With and without umlauts, the same term.
        assert_eq!(normalize("die Gebühren"), normalize("die Gebuhren"));
        assert_eq!(normalize("ich habe die Straße"), vec!["strass"]);
    }

    #[test]
    fn normalize_splits_unicode_words() {
        assert_eq!(
            normalize("Lieferung—verspätet…Ärger!"),
            vec!["liefer", "verspatet", "arg"]
        );
    }

    #[test]
    fn detects_language_by_stop_words() {
        assert_eq!(
            detect_language("Ich habe meine Rechnung nicht bekommen"),
            Language::German
        );
        assert_eq!(
            detect_language("I have not received my invoice"),
            Language::English
        );
        assert_eq!(detect_language("Lieferung verspätet"), Language::German);
        assert_eq!(
            language_evidence("Lieferung verspätet"),
            Some(Language::German)
        );
        assert_eq!(language_evidence("Rechnung doppelt"), None);
        assert_eq!(detect_language("Rechnung doppelt"), Language::English);
        assert_eq!(Language::German.code(), "de");
    }

    #[test]
    fn german_query_finds_the_german_ticket() {
        let index = index(&[
            ("AAAAAAAA", "Rechnungen doppelt abgebucht worden"),
            ("BBBBBBBB", "Wo ist mein Paket? Die Lieferung ist verspätet"),
            ("CCCCCCCC", "Ich möchte mein Passwort zurücksetzen"),
            ("DDDDDDDD", "My invoice was charged twice"),
        ]);
        let hits = index.search("Meine Rechnung ist doppelt abgebucht", 5, None);
        assert_eq!(ids(&hits), vec!["AAAAAAAA"]);
        assert_eq!(hits[0].subject, "subject AAAAAAAA");
        assert!(hits[0].score > 0.0);
    }

    #[test]
    fn english_query_finds_the_english_ticket() {
        let index = index(&[
            ("AAAAAAAA", "Rechnungen doppelt abgebucht worden"),
            ("BBBBBBBB", "I was refunded only half of the amount"),
            ("CCCCCCCC", "My parcel never arrived, where is it?"),
            ("DDDDDDDD", "How do I change my password?"),
        ]);
        let hits = index.search("When do I get my refunds?", 5, None);
        assert_eq!(ids(&hits), vec!["BBBBBBBB"]);
    }

    #[test]
    fn ranks_better_matches_first_and_breaks_ties_by_id() {
        let index = index(&[
            ("CCCCCCCC", "parcel damaged"),
            ("BBBBBBBB", "parcel damaged"),
            ("AAAAAAAA", "parcel"),
            ("DDDDDDDD", "password reset"),
            ("EEEEEEEE", "invoice wrong"),
        ]);
        let hits = index.search("damaged parcel", 5, None);
        assert_eq!(ids(&hits), vec!["BBBBBBBB", "CCCCCCCC", "AAAAAAAA"]);
        assert_eq!(hits[0].score, hits[1].score);
        assert!(hits[1].score > hits[2].score);
        assert_eq!(
            ids(&index.search("damaged parcel", 2, None)),
            vec!["BBBBBBBB", "CCCCCCCC"]
        );
    }

    #[test]
    fn stop_words_do_not_match() {
        let index = index(&[("AAAAAAAA", "the parcel is where it is and I am not")]);
        assert!(index.search("is it the and where I am", 5, None).is_empty());
        assert!(index
            .search("ist es die und wo ich bin", 5, None)
            .is_empty());
    }

    #[test]
    fn excludes_the_asking_ticket() {
        let index = index(&[
            ("AAAAAAAA", "refund for broken headphones"),
            ("BBBBBBBB", "refund please"),
        ]);
        let hits = index.search("refund for broken headphones", 5, Some(&id("AAAAAAAA")));
        assert_eq!(ids(&hits), vec!["BBBBBBBB"]);
    }

    #[test]
    fn empty_or_unmatched_query_finds_nothing() {
        let index = index(&[("AAAAAAAA", "refund for broken headphones")]);
        assert!(index.search("", 5, None).is_empty());
        assert!(index
            .search("  !!! 12345 https://x.y/z ", 5, None)
            .is_empty());
        assert!(index.search("password", 5, None).is_empty());
        assert!(index.search("refund", 0, None).is_empty());
        assert!(SimilarityIndex::new().search("refund", 5, None).is_empty());
    }

    #[test]
    fn insert_replaces_and_remove_forgets() {
        let mut index = index(&[("AAAAAAAA", "refund"), ("BBBBBBBB", "parcel")]);
        index.insert(id("AAAAAAAA"), "new", &search_text(["password"]));
        assert_eq!(index.len(), 2);
        assert!(index.search("refund", 5, None).is_empty());
        assert_eq!(ids(&index.search("password", 5, None)), vec!["AAAAAAAA"]);
        assert!(index.remove(&id("AAAAAAAA")));
        assert!(!index.remove(&id("AAAAAAAA")));
        assert!(index.search("password", 5, None).is_empty());
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn search_text_joins_terms_of_each_text() {
        assert_eq!(
            search_text(["Meine Rechnungen", "I want my refunds"]),
            "rechnung want refund"
        );
        assert_eq!(search_text(Vec::<String>::new()), "");
    }

    #[test]
    fn a_full_search_text_says_so() {
        let long = "parcel damaged ".repeat(1000);
        let (text, full_at) = search_text_filled(["refund", long.as_str(), "refund"]);
        assert_eq!(full_at, Some(1));
        assert_eq!(text, search_text(["refund", long.as_str()]));
        assert_eq!(
            search_text_filled(["I want my refunds"]),
            ("want refund".into(), None)
        );
    }

    #[test]
    fn remembered_terms_are_the_terms() {
        for text in [
            "I want my refunds",
            "Meine Rechnungen sind doppelt abgebucht",
            "",
        ] {
            assert_eq!(&*normalized(text), normalize(text).as_slice());
            assert_eq!(
                &*normalized(text),
                normalize(text).as_slice(),
                "asked again"
            );
        }
        let long = "parcel damaged ".repeat(100);
        assert!(long.len() > TERMS_CACHE_MAX_TEXT_BYTES);
        assert_eq!(&*normalized(&long), normalize(&long).as_slice());
    }

    #[test]
    fn search_text_is_capped_on_a_term_boundary() {
        let long = "parcel damaged ".repeat(1000);
        let text = search_text([long.as_str()]);
        assert!(text.len() <= SEARCH_TEXT_MAX_BYTES);
        assert!(text.len() > SEARCH_TEXT_MAX_BYTES - 10);
        assert!(
            text.split(' ').all(|t| t == "parcel" || t == "damag"),
            "{text:.40}"
        );
    }

    #[test]
    fn bm25_score_matches_the_formula() {
        // One matching document of two, the term once in a document of average length:
        // idf = ln(1 + (2 - 1 + 0.5) / (1 + 0.5)) = ln 2; tf part = 2.2 / (1 + 1.2) = 1.
        let index = index(&[("AAAAAAAA", "parcel"), ("BBBBBBBB", "invoice")]);
        let hits = index.search("parcel", 5, None);
        assert!(
            (hits[0].score - 2f64.ln()).abs() < 1e-12,
            "{}",
            hits[0].score
        );
    }
}
