//! Texts agents send: the public-to-private handoff (a short public answer and the private
//! message that continues the conversation) and canned responses, with placeholders.
//!
//! A template is plain text with placeholders in double braces (spaces inside allowed):
//! `{{customer.name}}`, `{{customer.first_name}}`, `{{agent.name}}`, `{{ticket.id}}`,
//! `{{ticket.subject}}`. An unknown placeholder or an unclosed `{{` is an error when the
//! template is parsed, so a typo in the configuration stops the configuration from loading.
//!
//! A placeholder without a value (a customer whose name is unknown) renders as nothing, and
//! takes one space beside it along (`Hi {{customer.first_name}},` → `Hi,`), so a greeting reads
//! well in any language either way.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::TicketId;
use crate::similar::language_evidence;

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A placeholder Crossdesk does not know (a typo).
    #[error(
        "unknown placeholder `{{{{{0}}}}}` (known: customer.name, customer.first_name, \
         agent.name, ticket.id, ticket.subject)"
    )]
    UnknownPlaceholder(String),
    /// A `{{` without its `}}`.
    #[error("`{{{{` at byte {0} is not closed by `}}}}`")]
    Unclosed(usize),
    /// A placeholder that could repeat personal data in a public message.
    #[error("placeholder `{{{{{0}}}}}` may not appear in a public message (only agent.name and ticket.id may)")]
    NotPublic(String),
    /// The default language has no handoff texts.
    #[error("the default handoff language `{0}` has no templates (shipped: de, en)")]
    NoDefaultLanguage(String),
    /// A language key that is empty.
    #[error("a handoff template language is empty")]
    EmptyLanguage,
    /// A canned response without a name.
    #[error("a canned response has an empty name")]
    EmptyName,
    /// An error in a named template.
    #[error("in {template}: {source}")]
    In {
        /// Which template (`canned response \`refund\``, `handoff de/public`).
        template: String,
        /// What is wrong with it.
        source: Box<TemplateError>,
    },
}

impl TemplateError {
    fn within(self, template: impl Into<String>) -> Self {
        TemplateError::In {
            template: template.into(),
            source: Box::new(self),
        }
    }
}

/// A value a template can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placeholder {
    /// `customer.name`: the customer's display name.
    CustomerName,
    /// `customer.first_name`: the first word of the customer's display name.
    CustomerFirstName,
    /// `agent.name`: the answering agent's name.
    AgentName,
    /// `ticket.id`: the ticket's id.
    TicketId,
    /// `ticket.subject`: the ticket's subject.
    TicketSubject,
}

impl Placeholder {
    /// Every placeholder.
    pub const ALL: [Placeholder; 5] = [
        Placeholder::CustomerName,
        Placeholder::CustomerFirstName,
        Placeholder::AgentName,
        Placeholder::TicketId,
        Placeholder::TicketSubject,
    ];

    /// Its name inside the braces.
    pub fn as_str(self) -> &'static str {
        match self {
            Placeholder::CustomerName => "customer.name",
            Placeholder::CustomerFirstName => "customer.first_name",
            Placeholder::AgentName => "agent.name",
            Placeholder::TicketId => "ticket.id",
            Placeholder::TicketSubject => "ticket.subject",
        }
    }

    /// Whether it may appear in a public message: the customer's name and the ticket's
    /// subject may be personal data, the agent's name and the ticket id are not.
    pub fn is_public(self) -> bool {
        matches!(self, Placeholder::AgentName | Placeholder::TicketId)
    }

    fn parse(name: &str) -> Result<Self, TemplateError> {
        Placeholder::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .ok_or_else(|| TemplateError::UnknownPlaceholder(name.to_string()))
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The values placeholders render as; `None` (or blank) renders as nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaceholderValues {
    /// The customer's display name.
    pub customer_name: Option<String>,
    /// The answering agent's name.
    pub agent_name: Option<String>,
    /// The ticket's id.
    pub ticket_id: Option<TicketId>,
    /// The ticket's subject.
    pub ticket_subject: Option<String>,
}

impl PlaceholderValues {
    /// The value of a placeholder, if there is one.
    pub fn get(&self, placeholder: Placeholder) -> Option<&str> {
        let value = match placeholder {
            Placeholder::CustomerName => self.customer_name.as_deref(),
            Placeholder::CustomerFirstName => self
                .customer_name
                .as_deref()
                .and_then(|name| name.split_whitespace().next()),
            Placeholder::AgentName => self.agent_name.as_deref(),
            Placeholder::TicketId => self.ticket_id.as_ref().map(TicketId::as_str),
            Placeholder::TicketSubject => self.ticket_subject.as_deref(),
        };
        value.map(str::trim).filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Placeholder(Placeholder),
}

/// A parsed template: every placeholder in it is known, so rendering cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Parses a template; fails on an unknown placeholder or an unclosed `{{`.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = template;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_string()));
            }
            let inner_start = open + 2;
            let Some(close) = rest[inner_start..].find("}}") else {
                return Err(TemplateError::Unclosed(offset + open));
            };
            let name = rest[inner_start..inner_start + close].trim();
            segments.push(Segment::Placeholder(Placeholder::parse(name)?));
            let consumed = inner_start + close + 2;
            rest = &rest[consumed..];
            offset += consumed;
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        Ok(Template { segments })
    }

    /// Parses a template for a public message: as [`Template::parse`], and only placeholders
    /// that cannot repeat personal data ([`Placeholder::is_public`]).
    pub fn parse_public(template: &str) -> Result<Self, TemplateError> {
        let parsed = Template::parse(template)?;
        let personal = parsed.placeholders().find(|p| !p.is_public());
        match personal {
            Some(p) => Err(TemplateError::NotPublic(p.as_str().to_string())),
            None => Ok(parsed),
        }
    }

    /// The placeholders it uses, in order.
    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Placeholder(p) => Some(*p),
            Segment::Text(_) => None,
        })
    }

    /// The text with the values filled in; a placeholder without a value renders as nothing
    /// and takes the space before it (or, at the start of a line, the one after it) along.
    pub fn render(&self, values: &PlaceholderValues) -> String {
        let mut out = String::new();
        let mut skip_space = false;
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => {
                    let text = match text.strip_prefix(' ') {
                        Some(stripped) if skip_space => stripped,
                        _ => text,
                    };
                    out.push_str(text);
                    skip_space = false;
                }
                Segment::Placeholder(p) => match values.get(*p) {
                    Some(value) => {
                        out.push_str(value);
                        skip_space = false;
                    }
                    None => {
                        if out.ends_with(' ') {
                            out.pop();
                        } else if out.is_empty() || out.ends_with('\n') {
                            skip_space = true;
                        }
                    }
                },
            }
        }
        out
    }
}

/// Checks a template: every placeholder known, every `{{` closed.
pub fn validate(template: &str) -> Result<(), TemplateError> {
    Template::parse(template).map(|_| ())
}

/// Renders a template with the values (see [`Template::render`] for missing values).
pub fn render(template: &str, values: &PlaceholderValues) -> Result<String, TemplateError> {
    Ok(Template::parse(template)?.render(values))
}

/// A prepared answer agents pick by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CannedResponse {
    /// Its short name (`refund_started`).
    pub name: String,
    /// What agents see in the list.
    pub title: String,
    /// The template.
    pub text: String,
}

impl CannedResponse {
    /// Checks the response when the configuration is loaded; the error names it.
    pub fn validate(&self) -> Result<(), TemplateError> {
        if self.name.trim().is_empty() {
            return Err(TemplateError::EmptyName);
        }
        validate(&self.text)
            .map_err(|e| e.within(format!("canned response `{}`", self.name.trim())))
    }

    /// The response's text with the values filled in.
    pub fn render(&self, values: &PlaceholderValues) -> Result<String, TemplateError> {
        render(&self.text, values)
            .map_err(|e| e.within(format!("canned response `{}`", self.name.trim())))
    }
}

/// The two texts of a handoff in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffTexts {
    /// The short public answer inviting the customer to continue privately; it may use only
    /// `{{agent.name}}` and `{{ticket.id}}`.
    pub public: String,
    /// The private message that continues the conversation.
    pub private: String,
}

/// The handoff settings: the fallback language and texts replacing or adding to the shipped
/// ones, by language code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandoffSettings {
    /// The language used when the customer's text does not show one, or shows one without
    /// texts (default `en`).
    pub default_language: String,
    /// Texts by language code (`de`, `en`, …), replacing the shipped texts of that language.
    pub templates: BTreeMap<String, HandoffTexts>,
}

impl Default for HandoffSettings {
    fn default() -> Self {
        HandoffSettings {
            default_language: "en".to_string(),
            templates: BTreeMap::new(),
        }
    }
}

const SHIPPED: &[(&str, &str, &str)] = &[
    (
        "de",
        "Danke für Ihre Nachricht! Lassen Sie uns per Direktnachricht weitermachen, damit wir \
         Ihr Anliegen vertraulich klären können. Bitte teilen Sie hier keine persönlichen Daten.",
        "Hallo {{customer.first_name}}, danke für Ihre Geduld! Wir kümmern uns hier vertraulich \
         um Ihr Anliegen (Ticket {{ticket.id}}). Schreiben Sie uns gern alle Details, die wir \
         dafür brauchen.",
    ),
    (
        "en",
        "Thanks for reaching out! Let's continue in a private message so we can look into this \
         safely. Please don't share any personal details here.",
        "Hi {{customer.first_name}}, thanks for your patience! We'll take care of your request \
         here in private (ticket {{ticket.id}}). Feel free to send us any details we need.",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct ParsedTexts {
    public: Template,
    private: Template,
}

/// The handoff texts by language, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffTemplates {
    default_language: String,
    texts: BTreeMap<String, ParsedTexts>,
}

/// A rendered handoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffMessages {
    /// The language chosen.
    pub language: String,
    /// The public answer.
    pub public: String,
    /// The private message.
    pub private: String,
}

impl Default for HandoffTemplates {
    /// The shipped German and English texts, English by default.
    fn default() -> Self {
        HandoffTemplates::new(&HandoffSettings::default())
            .expect("the shipped handoff templates are valid")
    }
}

impl HandoffTemplates {
    /// The shipped texts with the settings' texts over them; fails (naming the template) on a
    /// bad placeholder, a public text naming personal data, or a default language without
    /// texts.
    pub fn new(settings: &HandoffSettings) -> Result<Self, TemplateError> {
        let shipped = SHIPPED.iter().map(|(lang, public, private)| {
            (
                lang.to_string(),
                HandoffTexts {
                    public: public.to_string(),
                    private: private.to_string(),
                },
            )
        });
        let configured = settings
            .templates
            .iter()
            .map(|(lang, texts)| (lang.trim().to_ascii_lowercase(), texts.clone()));
        let mut texts = BTreeMap::new();
        for (lang, raw) in shipped.chain(configured) {
            if lang.is_empty() {
                return Err(TemplateError::EmptyLanguage);
            }
            let public = Template::parse_public(&raw.public)
                .map_err(|e| e.within(format!("handoff {lang}/public")))?;
            let private = Template::parse(&raw.private)
                .map_err(|e| e.within(format!("handoff {lang}/private")))?;
            texts.insert(lang, ParsedTexts { public, private });
        }
        let default_language = settings.default_language.trim().to_ascii_lowercase();
        if !texts.contains_key(&default_language) {
            return Err(TemplateError::NoDefaultLanguage(default_language));
        }
        Ok(HandoffTemplates {
            default_language,
            texts,
        })
    }

    /// The language to answer a customer in: the one their text shows
    /// ([`language_evidence`]) if there are texts for it, else the default.
    pub fn language_for(&self, customer_text: &str) -> &str {
        language_evidence(customer_text)
            .map(|l| l.code())
            .filter(|code| self.texts.contains_key(*code))
            .unwrap_or(self.default_language.as_str())
    }

    /// The languages with texts.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.texts.keys().map(String::as_str)
    }

    /// The public answer and private message in `language`; `None` when it has no texts.
    pub fn render_in(&self, language: &str, values: &PlaceholderValues) -> Option<HandoffMessages> {
        let language = language.trim().to_ascii_lowercase();
        let texts = self.texts.get(&language)?;
        Some(HandoffMessages {
            public: texts.public.render(values),
            private: texts.private.render(values),
            language,
        })
    }

    /// The public answer and private message for a customer who wrote `customer_text`.
    pub fn render(&self, customer_text: &str, values: &PlaceholderValues) -> HandoffMessages {
        let language = self.language_for(customer_text).to_string();
        let texts = self
            .texts
            .get(&language)
            .or_else(|| self.texts.get(&self.default_language))
            .expect("the default language has texts (checked in new)");
        HandoffMessages {
            public: texts.public.render(values),
            private: texts.private.render(values),
            language,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> PlaceholderValues {
        PlaceholderValues {
            customer_name: Some("Alex Müller".into()),
            agent_name: Some("Sam".into()),
            ticket_id: Some(TicketId::parse("K3F9Q2XA").unwrap()),
            ticket_subject: Some("Doppelte Abbuchung".into()),
        }
    }

    #[test]
    fn renders_every_placeholder() {
        let text = "{{customer.name}}|{{ customer.first_name }}|{{agent.name}}|{{ticket.id}}|\
                    {{ticket.subject}}";
        assert_eq!(
            render(text, &values()).unwrap(),
            "Alex Müller|Alex|Sam|K3F9Q2XA|Doppelte Abbuchung"
        );
    }

    #[test]
    fn unknown_placeholder_is_an_error_naming_it() {
        let err = render("Hi {{customer.nmae}}!", &values()).unwrap_err();
        assert_eq!(
            err,
            TemplateError::UnknownPlaceholder("customer.nmae".into())
        );
        assert!(err.to_string().contains("`{{customer.nmae}}`"), "{err}");
        assert_eq!(
            validate("{{}}"),
            Err(TemplateError::UnknownPlaceholder(String::new()))
        );
    }

    #[test]
    fn unclosed_braces_are_an_error() {
        assert_eq!(
            validate("Hi {{customer.name"),
            Err(TemplateError::Unclosed(3))
        );
        assert_eq!(
            validate("{{ticket.id}} and {{"),
            Err(TemplateError::Unclosed(18))
        );
    }

    #[test]
    fn text_without_placeholders_renders_as_is() {
        assert_eq!(render("Danke! }} {", &values()).unwrap(), "Danke! }} {");
        assert_eq!(render("", &values()).unwrap(), "");
    }

    #[test]
    fn missing_values_render_as_nothing_with_their_space() {
        let none = PlaceholderValues::default();
        assert_eq!(render("Hi {{customer.first_name}},", &none).unwrap(), "Hi,");
        assert_eq!(
            render("Hallo {{customer.name}} und willkommen", &none).unwrap(),
            "Hallo und willkommen"
        );
        assert_eq!(
            render(
                "{{customer.name}} schrieb:\n{{agent.name}} antwortet",
                &none
            )
            .unwrap(),
            "schrieb:\nantwortet"
        );
        let blank = PlaceholderValues {
            customer_name: Some("  ".into()),
            ..values()
        };
        assert_eq!(
            render("Hi {{customer.first_name}}, {{agent.name}}", &blank).unwrap(),
            "Hi, Sam"
        );
    }

    #[test]
    fn canned_response_validates_and_names_itself() {
        let response = CannedResponse {
            name: "refund_started".into(),
            title: "Refund started".into(),
            text: "Hi {{customer.first_name}}, your refund for {{ticket.subject}} is on its way."
                .into(),
        };
        assert!(response.validate().is_ok());
        assert_eq!(
            response.render(&values()).unwrap(),
            "Hi Alex, your refund for Doppelte Abbuchung is on its way."
        );
        let typo = CannedResponse {
            text: "Hi {{custmer.name}}".into(),
            ..response.clone()
        };
        let err = typo.validate().unwrap_err();
        assert!(
            err.to_string().contains("canned response `refund_started`")
                && err.to_string().contains("custmer.name"),
            "{err}"
        );
        let unnamed = CannedResponse {
            name: " ".into(),
            ..response
        };
        assert_eq!(unnamed.validate(), Err(TemplateError::EmptyName));
    }

    #[test]
    fn canned_response_rejects_unknown_fields() {
        let json = r#"{"name":"a","title":"A","text":"x","body":"y"}"#;
        assert!(serde_json::from_str::<CannedResponse>(json).is_err());
    }

    #[test]
    fn shipped_handoff_answers_in_the_customers_language() {
        let templates = HandoffTemplates::default();
        let de = templates.render("Meine Rechnung ist doppelt abgebucht worden", &values());
        assert_eq!(de.language, "de");
        assert!(de.public.starts_with("Danke"), "{}", de.public);
        assert!(de.private.starts_with("Hallo Alex,"), "{}", de.private);
        assert!(de.private.contains("K3F9Q2XA"));

        let en = templates.render("I was charged twice for my order", &values());
        assert_eq!(en.language, "en");
        assert!(en.private.starts_with("Hi Alex,"), "{}", en.private);
        assert!(en.private.contains("K3F9Q2XA"));
    }

    #[test]
    fn shipped_public_texts_repeat_no_personal_data() {
        let templates = HandoffTemplates::default();
        for text in ["Meine Rechnung ist doppelt", "My invoice was charged twice"] {
            let messages = templates.render(text, &values());
            assert!(!messages.public.contains("Alex"));
            assert!(!messages.public.contains("Abbuchung"));
            // Short enough for a tweet.
            assert!(messages.public.chars().count() <= 280);
        }
    }

    #[test]
    fn shipped_private_text_without_a_name_still_reads_well() {
        let templates = HandoffTemplates::default();
        let values = PlaceholderValues {
            customer_name: None,
            ..values()
        };
        let de = templates.render("Ich habe eine Frage", &values);
        assert!(de.private.starts_with("Hallo, danke"), "{}", de.private);
        let en = templates.render("I have a question", &values);
        assert!(en.private.starts_with("Hi, thanks"), "{}", en.private);
    }

    #[test]
    fn falls_back_to_the_default_language() {
        let templates = HandoffTemplates::default();
        assert_eq!(templates.language_for("👍 ???"), "en");
        let settings = HandoffSettings {
            default_language: "DE".into(),
            ..HandoffSettings::default()
        };
        let templates = HandoffTemplates::new(&settings).unwrap();
        assert_eq!(templates.language_for("Rechnung doppelt"), "de");
        assert_eq!(templates.language_for("where is my parcel"), "en");
        assert_eq!(templates.languages().collect::<Vec<_>>(), vec!["de", "en"]);
    }

    #[test]
    fn settings_override_and_add_languages() {
        let settings: HandoffSettings = serde_json::from_str(
            r#"{
                "default_language": "fr",
                "templates": {
                    "en": {"public": "Please DM us ({{ticket.id}}).", "private": "Hello {{customer.name}}."},
                    "fr": {"public": "Écrivez-nous en privé.", "private": "Bonjour {{customer.first_name}} !"}
                }
            }"#,
        )
        .unwrap();
        let templates = HandoffTemplates::new(&settings).unwrap();
        let en = templates.render("where is my parcel", &values());
        assert_eq!(en.public, "Please DM us (K3F9Q2XA).");
        assert_eq!(en.private, "Hello Alex Müller.");
        // German keeps its shipped texts; text without evidence falls back to French.
        assert_eq!(templates.language_for("Wo ist mein Paket"), "de");
        let fr = templates.render("???", &values());
        assert_eq!(
            (fr.language.as_str(), fr.private.as_str()),
            ("fr", "Bonjour Alex !")
        );
    }

    #[test]
    fn settings_errors_name_the_template() {
        let with = |lang: &str, public: &str, private: &str| HandoffSettings {
            default_language: "en".into(),
            templates: BTreeMap::from([(
                lang.to_string(),
                HandoffTexts {
                    public: public.into(),
                    private: private.into(),
                },
            )]),
        };
        let err = HandoffTemplates::new(&with("de", "DM us", "Hallo {{kunde.name}}")).unwrap_err();
        assert!(err.to_string().contains("handoff de/private"), "{err}");
        assert!(err.to_string().contains("kunde.name"), "{err}");

        let err =
            HandoffTemplates::new(&with("en", "Hi {{customer.name}}, DM us", "x")).unwrap_err();
        assert_eq!(
            err,
            TemplateError::NotPublic("customer.name".into()).within("handoff en/public")
        );

        let missing = HandoffSettings {
            default_language: "fr".into(),
            ..HandoffSettings::default()
        };
        assert_eq!(
            HandoffTemplates::new(&missing).unwrap_err(),
            TemplateError::NoDefaultLanguage("fr".into())
        );
        assert!(serde_json::from_str::<HandoffSettings>(r#"{"default":"de"}"#).is_err());
        assert_eq!(
            serde_json::from_str::<HandoffSettings>("{}").unwrap(),
            HandoffSettings::default()
        );
    }
}
