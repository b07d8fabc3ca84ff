//! Rolling out signature checks safely. Each signed channel (Facebook, X, chat) runs in one of
//! two modes:
//!
//! - [`SignatureMode::Enforce`] (the default): a request whose signature is missing or wrong is
//!   refused, exactly as the channel's `verify` says.
//! - [`SignatureMode::Report`], for migrating an existing webhook whose sender does not sign
//!   (correctly) yet: such a request is accepted, and the webhook it becomes says why its
//!   signature failed, so the ingest logs it, counts it and flags its messages. Only the
//!   signature is relaxed: the body size cap, the handshake's verify token, malformed bodies and
//!   chat's timestamp (present, well formed, within the replay window) are enforced as ever, so
//!   a stale or replayed request is still refused.
//!
//! The mode is configuration (`CROSSDESK_<CHANNEL>_SIGNATURE_MODE`), the same on the local stack
//! and in the Lambda functions, and never silent: startup warns, and [`signature_mode_finding`]
//! puts it in `GET /api/channels` and the health check.

use std::fmt;

use chrono::{DateTime, Utc};
use crossdesk_core::health::{ChannelFinding, CheckStatus};
use thiserror::Error;
use tracing::warn;

use crate::{Channel, VerifiedWebhook, VerifyError, WebhookRequest};

/// The variable holding the Facebook (and Instagram) webhook's signature mode.
pub const FACEBOOK_SIGNATURE_MODE: &str = "CROSSDESK_FACEBOOK_SIGNATURE_MODE";
/// The variable holding the X webhook's signature mode.
pub const TWITTER_SIGNATURE_MODE: &str = "CROSSDESK_TWITTER_SIGNATURE_MODE";
/// The variable holding the chat webhook's signature mode.
pub const CHAT_SIGNATURE_MODE: &str = "CROSSDESK_CHAT_SIGNATURE_MODE";
/// The name of the finding that shows a channel's signature mode.
pub const SIGNATURE_MODE_CHECK: &str = "signature_mode";

/// What a channel does with a request whose signature is missing, malformed or wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SignatureMode {
    /// Refuse it (401, or 400 for a malformed header). The default.
    #[default]
    Enforce,
    /// Accept it, log a warning, count it and flag its messages: for migrating a webhook.
    Report,
}

impl SignatureMode {
    /// The setting's value (`enforce`, `report`).
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureMode::Enforce => "enforce",
            SignatureMode::Report => "report",
        }
    }

    /// Parses a setting's value: `enforce` or `report` (surrounding spaces and case ignored).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "enforce" => Some(SignatureMode::Enforce),
            "report" => Some(SignatureMode::Report),
            _ => None,
        }
    }
}

impl fmt::Display for SignatureMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signature mode variable set to something else than `enforce` or `report`.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{variable} is invalid: `{value}` is neither `enforce` nor `report`")]
pub struct InvalidSignatureMode {
    /// The variable.
    pub variable: &'static str,
    /// Its value.
    pub value: String,
}

impl InvalidSignatureMode {
    /// What is wrong with the value, without the variable's name.
    pub fn reason(&self) -> String {
        format!("`{}` is neither `enforce` nor `report`", self.value)
    }
}

/// The signature mode of each signed channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignatureModes {
    /// `CROSSDESK_FACEBOOK_SIGNATURE_MODE`: the Facebook webhook (Messenger, page, Instagram).
    pub facebook: SignatureMode,
    /// `CROSSDESK_TWITTER_SIGNATURE_MODE`: the X webhook.
    pub twitter: SignatureMode,
    /// `CROSSDESK_CHAT_SIGNATURE_MODE`: the chat webhook.
    pub chat: SignatureMode,
}

impl SignatureModes {
    /// Reads the three variables through `lookup`; unset or empty is `enforce`, anything but
    /// `enforce` or `report` is an error naming the variable.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, InvalidSignatureMode> {
        let read = |variable: &'static str| match lookup(variable) {
            None => Ok(SignatureMode::Enforce),
            Some(v) if v.trim().is_empty() => Ok(SignatureMode::Enforce),
            Some(v) => SignatureMode::parse(&v).ok_or(InvalidSignatureMode { variable, value: v }),
        };
        Ok(SignatureModes {
            facebook: read(FACEBOOK_SIGNATURE_MODE)?,
            twitter: read(TWITTER_SIGNATURE_MODE)?,
            chat: read(CHAT_SIGNATURE_MODE)?,
        })
    }

    /// Each signed webhook route (`facebook`, `twitter`, `chat`) with its mode and variable.
    pub fn routes(&self) -> [(&'static str, SignatureMode, &'static str); 3] {
        [
            ("facebook", self.facebook, FACEBOOK_SIGNATURE_MODE),
            ("twitter", self.twitter, TWITTER_SIGNATURE_MODE),
            ("chat", self.chat, CHAT_SIGNATURE_MODE),
        ]
    }

    /// The mode of a webhook route; `enforce` for any other route (email).
    pub fn for_route(&self, route: &str) -> SignatureMode {
        self.routes()
            .into_iter()
            .find(|(r, _, _)| *r == route)
            .map_or(SignatureMode::Enforce, |(_, mode, _)| mode)
    }

    /// Logs a warning for each of `routes` in report mode (at startup, at every cold start);
    /// returns how many there are.
    pub fn warn_if_reporting<'r>(&self, routes: impl IntoIterator<Item = &'r str>) -> usize {
        let mut reporting = 0;
        for route in routes {
            if let Some((_, SignatureMode::Report, variable)) =
                self.routes().into_iter().find(|(r, _, _)| *r == route)
            {
                reporting += 1;
                warn!(
                    channel = route,
                    variable,
                    "signature checks are in REPORT mode: requests with a missing or wrong \
                     signature are accepted (and flagged). Set {variable}=enforce once the \
                     sender signs correctly"
                );
            }
        }
        reporting
    }
}

/// Why a request's signature failed, as report mode records it: never the secret, never the
/// signature's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFailure {
    /// The signature header is absent.
    Missing {
        /// The header's name.
        header: &'static str,
    },
    /// The signature header is not in the platform's form.
    Malformed {
        /// The header's name.
        header: &'static str,
    },
    /// The signature does not match the body (wrong secret, or a modified body).
    Mismatch,
}

impl SignatureFailure {
    /// A short code: `missing`, `malformed`, `mismatch`.
    pub fn code(self) -> &'static str {
        match self {
            SignatureFailure::Missing { .. } => "missing",
            SignatureFailure::Malformed { .. } => "malformed",
            SignatureFailure::Mismatch => "mismatch",
        }
    }
}

impl fmt::Display for SignatureFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureFailure::Missing { header } => write!(f, "missing {header} header"),
            SignatureFailure::Malformed { header } => write!(f, "malformed {header} header"),
            SignatureFailure::Mismatch => f.write_str("signature does not match the request body"),
        }
    }
}

/// Verifies a webhook request as `mode` says.
///
/// In [`SignatureMode::Enforce`], and for a channel without a signature header (email), this is
/// exactly `channel.verify`. In [`SignatureMode::Report`], a request refused only for its
/// signature (the signature header missing or malformed, or a signature that does not match)
/// is accepted as a webhook that carries the failure, provided the channel's other checks
/// ([`Channel::verify_unsigned_parts`]: chat's timestamp) pass. Any other refusal stands, and a
/// correctly signed but stale request is refused in both modes.
pub fn verify_with_mode<'a>(
    channel: &dyn Channel,
    request: &WebhookRequest<'a>,
    now: DateTime<Utc>,
    mode: SignatureMode,
) -> Result<VerifiedWebhook<'a>, VerifyError> {
    let verified = channel.verify(request, now);
    let (SignatureMode::Report, Some(signature_header), Err(error)) =
        (mode, channel.signature_header(), &verified)
    else {
        return verified;
    };
    let failure = match error {
        VerifyError::MissingHeader(header) if header.eq_ignore_ascii_case(signature_header) => {
            SignatureFailure::Missing { header }
        }
        VerifyError::MalformedHeader { header, .. }
            if header.eq_ignore_ascii_case(signature_header) =>
        {
            SignatureFailure::Malformed { header }
        }
        VerifyError::BadSignature => SignatureFailure::Mismatch,
        // Another header (chat's timestamp) or a replay: report mode does not relax it.
        _ => return verified,
    };
    channel.verify_unsigned_parts(request, now)?;
    Ok(VerifiedWebhook::accepted_in_report_mode(
        request.body,
        failure,
    ))
}

/// What `GET /api/channels` and the health check say about a channel's signature mode:
/// `ok` when enforced, a `warning` in report mode (it must not be left on).
pub fn signature_mode_finding(mode: SignatureMode, variable: &str) -> ChannelFinding {
    match mode {
        SignatureMode::Enforce => ChannelFinding {
            check: SIGNATURE_MODE_CHECK.into(),
            status: CheckStatus::Ok,
            reason: "enforce: requests without a valid signature are refused".into(),
        },
        SignatureMode::Report => ChannelFinding {
            check: SIGNATURE_MODE_CHECK.into(),
            status: CheckStatus::Warning,
            reason: format!(
                "report: requests with a missing or wrong signature are accepted and their \
                 messages flagged `signature_unverified`; anyone who knows the webhook URL can \
                 post to it. Set {variable}=enforce once the sender signs correctly \
                 (CrossdeskSignatureFailures shows whether it does)"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{ChatChannel, SIGNATURE_HEADER, TIMESTAMP_HEADER};
    use crate::{EmailChannel, FacebookChannel, Headers, TwitterChannel};
    use secrecy::SecretString;
    use std::collections::HashMap;

    const SECRET: &str = "report-mode-secret";
    const BODY: &[u8] = br#"{"session_id":"s1","visitor":{"id":"v1"},"message":{"id":"m1","text":"Hi","sent_at":"2026-11-20T10:00:00Z"}}"#;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000, 0).unwrap()
    }

    fn chat() -> ChatChannel {
        ChatChannel::new(SecretString::from(SECRET))
    }

    fn chat_headers(secret: Option<&str>, ts: i64) -> Headers {
        let mut pairs = vec![(TIMESTAMP_HEADER.to_string(), ts.to_string())];
        if let Some(secret) = secret {
            let (_, sig) = ChatChannel::sign(secret, ts, BODY);
            pairs.push((SIGNATURE_HEADER.to_string(), sig));
        }
        Headers::new(pairs)
    }

    fn verify(
        channel: &dyn Channel,
        headers: &Headers,
        mode: SignatureMode,
    ) -> Result<Option<SignatureFailure>, VerifyError> {
        let request = WebhookRequest {
            headers,
            body: BODY,
        };
        verify_with_mode(channel, &request, now(), mode).map(|v| v.signature_failure())
    }

    #[test]
    fn parses_the_two_modes_and_nothing_else() {
        assert_eq!(
            SignatureMode::parse("enforce"),
            Some(SignatureMode::Enforce)
        );
        assert_eq!(
            SignatureMode::parse(" Report "),
            Some(SignatureMode::Report)
        );
        for bad in ["", "off", "reporting", "true", "enforced"] {
            assert_eq!(SignatureMode::parse(bad), None, "{bad}");
        }
        assert_eq!(SignatureMode::default(), SignatureMode::Enforce);
    }

    #[test]
    fn reads_each_channels_variable_and_names_an_invalid_one() {
        let vars: HashMap<&str, &str> = HashMap::from([
            (TWITTER_SIGNATURE_MODE, "report"),
            (CHAT_SIGNATURE_MODE, " "),
        ]);
        let modes = SignatureModes::from_lookup(|k| vars.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(
            modes,
            SignatureModes {
                facebook: SignatureMode::Enforce,
                twitter: SignatureMode::Report,
                chat: SignatureMode::Enforce,
            }
        );
        assert_eq!(modes.for_route("twitter"), SignatureMode::Report);
        assert_eq!(modes.for_route("email"), SignatureMode::Enforce);
        assert_eq!(modes.warn_if_reporting(["facebook", "twitter", "chat"]), 1);
        assert_eq!(modes.warn_if_reporting(["chat"]), 0);

        let err = SignatureModes::from_lookup(|k| {
            (k == FACEBOOK_SIGNATURE_MODE).then(|| "off".to_string())
        })
        .unwrap_err();
        assert_eq!(err.variable, FACEBOOK_SIGNATURE_MODE);
        assert!(err.to_string().contains(FACEBOOK_SIGNATURE_MODE), "{err}");
    }

    #[test]
    fn enforce_mode_is_exactly_the_channels_verify() {
        let good = chat_headers(Some(SECRET), now().timestamp());
        assert_eq!(verify(&chat(), &good, SignatureMode::Enforce), Ok(None));
        let wrong = chat_headers(Some("another-secret"), now().timestamp());
        assert_eq!(
            verify(&chat(), &wrong, SignatureMode::Enforce),
            Err(VerifyError::BadSignature)
        );
        let unsigned = chat_headers(None, now().timestamp());
        assert_eq!(
            verify(&chat(), &unsigned, SignatureMode::Enforce),
            Err(VerifyError::MissingHeader("X-Crossdesk-Signature"))
        );
    }

    #[test]
    fn report_mode_marks_a_wrong_or_missing_signature_and_keeps_a_good_one_clean() {
        let ts = now().timestamp();
        assert_eq!(
            verify(
                &chat(),
                &chat_headers(Some(SECRET), ts),
                SignatureMode::Report
            ),
            Ok(None),
            "a valid signature is a verified webhook"
        );
        assert_eq!(
            verify(
                &chat(),
                &chat_headers(Some("another-secret"), ts),
                SignatureMode::Report
            ),
            Ok(Some(SignatureFailure::Mismatch))
        );
        assert_eq!(
            verify(&chat(), &chat_headers(None, ts), SignatureMode::Report),
            Ok(Some(SignatureFailure::Missing {
                header: "X-Crossdesk-Signature"
            }))
        );
        let malformed = Headers::new([
            (TIMESTAMP_HEADER, ts.to_string()),
            (SIGNATURE_HEADER, "sha256=abc".to_string()),
        ]);
        assert_eq!(
            verify(&chat(), &malformed, SignatureMode::Report),
            Ok(Some(SignatureFailure::Malformed {
                header: "X-Crossdesk-Signature"
            }))
        );
    }

    #[test]
    fn report_mode_still_refuses_stale_and_replayed_chat_requests() {
        let stale = now().timestamp() - 301;
        // Correctly signed but old: a replay, refused in both modes.
        assert!(matches!(
            verify(
                &chat(),
                &chat_headers(Some(SECRET), stale),
                SignatureMode::Report
            ),
            Err(VerifyError::Stale { .. })
        ));
        // Wrongly signed and old: the timestamp check still applies.
        assert!(matches!(
            verify(
                &chat(),
                &chat_headers(Some("another-secret"), stale),
                SignatureMode::Report
            ),
            Err(VerifyError::Stale { .. })
        ));
        assert!(matches!(
            verify(&chat(), &chat_headers(None, stale), SignatureMode::Report),
            Err(VerifyError::Stale { .. })
        ));
        // No timestamp, or a malformed one: refused, it is not the signature.
        let no_ts = Headers::new([(SIGNATURE_HEADER, "v1=00")]);
        assert_eq!(
            verify(&chat(), &no_ts, SignatureMode::Report),
            Err(VerifyError::MissingHeader("X-Crossdesk-Timestamp"))
        );
        let bad_ts = Headers::new([(TIMESTAMP_HEADER, "yesterday")]);
        assert!(matches!(
            verify(&chat(), &bad_ts, SignatureMode::Report),
            Err(VerifyError::MalformedHeader {
                header: "X-Crossdesk-Timestamp",
                ..
            })
        ));
    }

    #[test]
    fn report_mode_applies_to_facebook_and_x_signatures() {
        let facebook = FacebookChannel::new(SecretString::from(SECRET), SecretString::from("vt"));
        let forged = Headers::new([(
            "X-Hub-Signature-256",
            FacebookChannel::sign("another-secret", BODY),
        )]);
        assert_eq!(
            verify(&facebook, &forged, SignatureMode::Report),
            Ok(Some(SignatureFailure::Mismatch))
        );
        assert_eq!(
            verify(&facebook, &Headers::default(), SignatureMode::Report),
            Ok(Some(SignatureFailure::Missing {
                header: "X-Hub-Signature-256"
            }))
        );
        let twitter = TwitterChannel::new(SecretString::from(SECRET));
        assert_eq!(
            verify(&twitter, &Headers::default(), SignatureMode::Report),
            Ok(Some(SignatureFailure::Missing {
                header: crate::twitter::SIGNATURE_HEADER
            }))
        );
        assert_eq!(
            verify(&twitter, &Headers::default(), SignatureMode::Enforce),
            Err(VerifyError::MissingHeader(crate::twitter::SIGNATURE_HEADER))
        );
    }

    #[test]
    fn report_mode_never_relaxes_a_channel_without_a_signature_header() {
        // Email's bearer token is not a signature being rolled out.
        let email = EmailChannel::new(SecretString::from("agent-token"));
        assert!(verify(&email, &Headers::default(), SignatureMode::Report).is_err());
    }

    #[test]
    fn the_failure_names_the_header_but_never_the_value() {
        let failure = SignatureFailure::Malformed {
            header: "X-Hub-Signature-256",
        };
        assert_eq!(failure.to_string(), "malformed X-Hub-Signature-256 header");
        assert_eq!(failure.code(), "malformed");
        assert_eq!(SignatureFailure::Mismatch.code(), "mismatch");
    }

    #[test]
    fn report_mode_is_a_warning_finding_and_enforce_is_ok() {
        let enforce = signature_mode_finding(SignatureMode::Enforce, CHAT_SIGNATURE_MODE);
        assert_eq!(enforce.status, CheckStatus::Ok);
        assert_eq!(enforce.check, "signature_mode");
        let report = signature_mode_finding(SignatureMode::Report, CHAT_SIGNATURE_MODE);
        assert_eq!(report.status, CheckStatus::Warning);
        assert!(report.reason.starts_with("report:"), "{}", report.reason);
        assert!(
            report.reason.contains(CHAT_SIGNATURE_MODE),
            "{}",
            report.reason
        );
    }
}
