//! Reply windows: whether a ticket can be answered now on each of its channels, and until when.
//! One source of truth for the agent API (shown before anyone types, and checked before a reply
//! is queued) and for the Facebook/Instagram sender (checked again before calling Meta).
//!
//! Meta's rules:
//! - Messenger and Instagram Direct: a reply within [`STANDARD_WINDOW`] of the customer's latest
//!   message; from there to [`HUMAN_AGENT_WINDOW`] only with the `HUMAN_AGENT` tag, which needs
//!   the page's Human Agent permission ([`ReplyCapabilities::human_agent`]). No other message tag
//!   is ever used: the others are reserved for purposes that are not customer support.
//! - A private reply to a Facebook or Instagram comment: once per comment, within
//!   [`PRIVATE_REPLY_WINDOW`] of it. A public reply to a comment has no window.
//!
//! Email, website chat, X mentions and X direct messages have no window (X documents none for
//! DMs): they can always be answered.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;
use thiserror::Error;

use crate::ids::EmailAddress;
use crate::model::{
    ChannelKind, Contact, Conversation, DeliveryStatus, Direction, Message, MessageEvent,
    Visibility,
};

/// Messenger's and Instagram's standard messaging window after the customer's latest message.
pub const STANDARD_WINDOW: TimeDelta = TimeDelta::hours(24);
/// How long after the customer's latest message a human agent may still answer with the
/// `HUMAN_AGENT` tag.
pub const HUMAN_AGENT_WINDOW: TimeDelta = TimeDelta::days(7);
/// How long after a comment the page may answer it privately (once).
pub const PRIVATE_REPLY_WINDOW: TimeDelta = TimeDelta::days(7);
/// The only message tag Crossdesk ever sends: a human agent's answer after the standard window.
pub const HUMAN_AGENT_TAG: &str = "HUMAN_AGENT";

/// What the deployment is allowed to do that changes the windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyCapabilities {
    /// The Facebook page (and its Instagram account) has Meta's Human Agent permission:
    /// direct replies stay possible up to [`HUMAN_AGENT_WINDOW`], tagged `HUMAN_AGENT`.
    pub human_agent: bool,
}

/// How a Messenger or Instagram direct reply may go out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectWindow {
    /// Inside the standard window: a plain response, until `ends_at`.
    Standard {
        /// When the standard window closes (the Human Agent window may follow it).
        ends_at: DateTime<Utc>,
    },
    /// After the standard window, tagged `HUMAN_AGENT`, until `ends_at`.
    HumanAgent {
        /// When the Human Agent window closes.
        ends_at: DateTime<Utc>,
    },
}

impl DirectWindow {
    /// The message tag the reply must carry: `HUMAN_AGENT` or none.
    pub fn tag(self) -> Option<&'static str> {
        match self {
            DirectWindow::Standard { .. } => None,
            DirectWindow::HumanAgent { .. } => Some(HUMAN_AGENT_TAG),
        }
    }
}

/// A reply the platform's policy does not allow now.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason}")]
pub struct WindowClosed {
    /// `window_closed` (direct message), `private_reply_window_closed` (7 days after the
    /// comment) or `private_reply_used` (the comment already has its private reply).
    pub code: &'static str,
    /// When the window closed (for a used private reply: when it would have).
    pub closed_at: DateTime<Utc>,
    /// What happened, for the agent (one or more sentences, ending with a full stop).
    pub reason: String,
}

/// The window of a Messenger ("Messenger") or Instagram ("Instagram") direct reply, for a
/// customer who last wrote at `last`.
pub fn direct_window(
    channel: ChannelKind,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
    capabilities: ReplyCapabilities,
) -> Result<DirectWindow, WindowClosed> {
    let standard_closes = last + STANDARD_WINDOW;
    let agent_closes = last + HUMAN_AGENT_WINDOW;
    if now <= standard_closes {
        return Ok(DirectWindow::Standard {
            ends_at: standard_closes,
        });
    }
    if now <= agent_closes && capabilities.human_agent {
        return Ok(DirectWindow::HumanAgent {
            ends_at: agent_closes,
        });
    }
    let product = product(channel);
    let (closed_at, why) = if now <= agent_closes {
        (
            standard_closes,
            "and the page has no Human Agent permission for later human replies".to_string(),
        )
    } else {
        (
            agent_closes,
            format!(
                "and even a human agent may answer only within 7 days (until {})",
                rfc3339(agent_closes)
            ),
        )
    };
    Err(WindowClosed {
        code: "window_closed",
        closed_at,
        reason: format!(
            "The customer last wrote on {product} at {}; the 24-hour window closed at {} {why}.",
            rfc3339(last),
            rfc3339(standard_closes),
        ),
    })
}

/// The window of a private reply to a comment written at `written_at`: open until the returned
/// time.
pub fn private_reply_window(
    written_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, WindowClosed> {
    let closes = written_at + PRIVATE_REPLY_WINDOW;
    if now > closes {
        return Err(WindowClosed {
            code: "private_reply_window_closed",
            closed_at: closes,
            reason: format!(
                "Meta allows a private reply only within 7 days of the comment; that window \
                 closed at {}. Reply publicly instead.",
                rfc3339(closes)
            ),
        });
    }
    Ok(closes)
}

/// When the customer last wrote in `conversation` on `channel`: their latest new message among
/// `messages`. Edits and removals open no window, and the company's messages never do.
pub fn last_customer_message<'a>(
    messages: impl IntoIterator<Item = &'a Message>,
    channel: ChannelKind,
    conversation: &Conversation,
) -> Option<DateTime<Utc>> {
    messages
        .into_iter()
        .filter(|m| {
            m.direction == Direction::Inbound
                && m.event == MessageEvent::Created
                && m.channel == channel
                && &m.conversation == conversation
        })
        .map(|m| m.sent_at)
        .max()
}

/// When the comment `comment_id` on `channel` was written: its creation among `messages`.
pub fn comment_written_at<'a>(
    messages: impl IntoIterator<Item = &'a Message>,
    channel: ChannelKind,
    comment_id: &str,
) -> Option<DateTime<Utc>> {
    messages
        .into_iter()
        .filter(|m| {
            m.event == MessageEvent::Created
                && m.channel == channel
                && m.platform_message_id.as_deref() == Some(comment_id)
        })
        .map(|m| m.sent_at)
        .min()
}

/// The private replies to the comment `comment_id` among `messages` that were sent, are being
/// sent or may have been sent (queued, sent or unknown; not failed). Meta allows one.
pub fn private_replies_to<'a>(
    messages: &'a [Message],
    channel: ChannelKind,
    comment_id: &'a str,
) -> impl Iterator<Item = &'a Message> + 'a {
    messages.iter().filter(move |m| {
        m.direction == Direction::Outbound
            && m.channel == channel
            && m.visibility == Visibility::Private
            && matches!(m.conversation, Conversation::CommentThread { .. })
            && m.replies_to.iter().any(|id| id == comment_id)
            && m.delivery.as_ref().is_some_and(|d| {
                matches!(
                    d.status,
                    DeliveryStatus::Queued | DeliveryStatus::Sent | DeliveryStatus::Unknown
                )
            })
    })
}

/// The customer message a reply on `channel` (any channel when `None`) answers: the latest one
/// that is not removed and not automatic mail (an auto-reply or a bounce is never answered).
pub fn reply_target(messages: &[Message], channel: Option<ChannelKind>) -> Option<&Message> {
    messages
        .iter()
        .rev()
        .filter(|m| {
            m.direction == Direction::Inbound
                && m.event != MessageEvent::Removed
                && !m.is_automatic()
        })
        .find(|m| channel.is_none_or(|c| c == m.channel))
}

/// Another channel the agent can use when a window is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyAlternative {
    /// The channel (`email`).
    pub channel: ChannelKind,
    /// The customer's address on it.
    pub address: EmailAddress,
}

impl ReplyAlternative {
    /// The alternative in a sentence, for an error message.
    pub fn sentence(&self) -> String {
        format!("Answer by {} instead: {}.", self.channel, self.address)
    }
}

/// Whether a ticket can be answered now on one channel and visibility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyWindow {
    /// The channel.
    pub channel: ChannelKind,
    /// Public (a comment or tweet reply) or private (a direct message, a private reply, email,
    /// chat).
    pub visibility: Visibility,
    /// Whether a reply is allowed now.
    pub can_reply: bool,
    /// When the window closes (or closed); `null` when the channel has none.
    pub window_ends_at: Option<DateTime<Utc>>,
    /// The message tag a reply sent now carries (`HUMAN_AGENT` after Messenger's or
    /// Instagram's 24 hours, with the page's permission); `null` for none.
    pub message_tag: Option<&'static str>,
    /// Why no reply is allowed, for the agent; `null` while it is.
    pub reason: Option<String>,
    /// Where the customer can still be reached when the window is closed: email, if the contact
    /// has an address; `null` otherwise.
    pub alternative: Option<ReplyAlternative>,
    /// What a refusal advises when there is no alternative (empty when the reason says it).
    #[serde(skip)]
    fallback: &'static str,
}

impl ReplyWindow {
    /// The refusal of a reply on this window, with the alternative, for an error message;
    /// `None` while a reply is allowed.
    pub fn refusal(&self) -> Option<String> {
        if self.can_reply {
            return None;
        }
        let reason = self
            .reason
            .as_deref()
            .unwrap_or("The reply window is closed.");
        Some(match (&self.alternative, self.fallback) {
            (Some(alternative), _) => format!("{reason} {}", alternative.sentence()),
            (None, "") => reason.to_string(),
            (None, fallback) => format!("{reason} {fallback}"),
        })
    }
}

/// The window of a reply with `visibility` answering `target`, one of the ticket's `messages`,
/// for the ticket's `contact`, at `now`.
pub fn assess(
    target: &Message,
    visibility: Visibility,
    messages: &[Message],
    contact: Option<&Contact>,
    now: DateTime<Utc>,
    capabilities: ReplyCapabilities,
) -> ReplyWindow {
    let channel = target.channel;
    let open = |window_ends_at, message_tag| ReplyWindow {
        channel,
        visibility,
        can_reply: true,
        window_ends_at,
        message_tag,
        reason: None,
        alternative: None,
        fallback: "",
    };
    let closed = |closed: WindowClosed, fallback: &'static str| ReplyWindow {
        channel,
        visibility,
        can_reply: false,
        window_ends_at: Some(closed.closed_at),
        message_tag: None,
        reason: Some(closed.reason),
        fallback,
        alternative: contact
            .and_then(|c| c.emails.first())
            .map(|address| ReplyAlternative {
                channel: ChannelKind::Email,
                address: address.clone(),
            }),
    };
    if !matches!(channel, ChannelKind::Facebook | ChannelKind::Instagram) {
        return open(None, None);
    }
    match (&target.conversation, visibility) {
        (Conversation::DirectThread { .. }, _) => {
            let last = last_customer_message(messages, channel, &target.conversation)
                .unwrap_or(target.sent_at);
            match direct_window(channel, last, now, capabilities) {
                // The window an agent can use: with the Human Agent permission, up to 7 days.
                Ok(window @ DirectWindow::Standard { ends_at }) => {
                    let ends_at = if capabilities.human_agent {
                        last + HUMAN_AGENT_WINDOW
                    } else {
                        ends_at
                    };
                    open(Some(ends_at), window.tag())
                }
                Ok(window @ DirectWindow::HumanAgent { ends_at }) => {
                    open(Some(ends_at), window.tag())
                }
                Err(e) => closed(
                    e,
                    "The customer has no email address on file: wait for them to write again.",
                ),
            }
        }
        (Conversation::CommentThread { .. }, Visibility::Private) => {
            let Some(comment_id) = target.platform_message_id.as_deref() else {
                // The sender refuses it (`missing_comment_id`); nothing to judge a window by.
                return open(None, None);
            };
            let written = comment_written_at(messages, channel, comment_id)
                .unwrap_or(target.sent_at)
                .min(target.sent_at);
            match private_reply_window(written, now) {
                // The reason already says to reply publicly.
                Err(e) => closed(e, ""),
                Ok(closes) => match private_replies_to(messages, channel, comment_id).next() {
                    Some(earlier) => closed(
                        WindowClosed {
                            code: "private_reply_used",
                            closed_at: closes,
                            reason: format!(
                                "Meta allows one private reply per comment, and this comment has \
                             one ({}, {}). Reply publicly instead.",
                                earlier.id,
                                earlier
                                    .delivery
                                    .as_ref()
                                    .map(|d| status_name(d.status))
                                    .unwrap_or("queued"),
                            ),
                        },
                        "",
                    ),
                    None => open(Some(closes), None),
                },
            }
        }
        // A public comment reply has no window.
        _ => open(None, None),
    }
}

/// Every way the ticket with these `messages` (oldest first) can be answered, one entry per
/// channel and visibility, in the order of [`ChannelKind::ALL`]: each channel's latest customer
/// message decides, as a reply without a channel would; a public message can be answered
/// publicly or privately, a private one privately.
pub fn reply_windows(
    messages: &[Message],
    contact: Option<&Contact>,
    now: DateTime<Utc>,
    capabilities: ReplyCapabilities,
) -> Vec<ReplyWindow> {
    let mut windows = Vec::new();
    for channel in ChannelKind::ALL {
        let Some(target) = reply_target(messages, Some(channel)) else {
            continue;
        };
        let visibilities: &[Visibility] = match target.visibility {
            Visibility::Public => &[Visibility::Public, Visibility::Private],
            Visibility::Private => &[Visibility::Private],
        };
        for &visibility in visibilities {
            windows.push(assess(
                target,
                visibility,
                messages,
                contact,
                now,
                capabilities,
            ));
        }
    }
    windows
}

/// The product name Meta's policy speaks of.
fn product(channel: ChannelKind) -> &'static str {
    match channel {
        ChannelKind::Instagram => "Instagram",
        _ => "Messenger",
    }
}

fn status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Queued => "queued",
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Unknown => "possibly sent",
        DeliveryStatus::SentOutsideCrossdesk => "sent outside Crossdesk",
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ContactId, MessageId};
    use crate::model::{Author, Delivery, EmailDetails};

    const PAGE: &str = "105000000000001";
    const PSID: &str = "2400000000000001";
    const POST: &str = "105000000000001_900000000000001";
    const COMMENT: &str = "900000000000001_700000000000001";

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn dm() -> Conversation {
        Conversation::DirectThread {
            account_id: PAGE.into(),
            user_id: PSID.into(),
        }
    }

    fn comments() -> Conversation {
        Conversation::CommentThread {
            post_id: POST.into(),
            user_id: PSID.into(),
        }
    }

    /// A customer's message on `channel`, `age` before [`now`]. Built from JSON, so fields the
    /// model adds later (with serde defaults) need no change here.
    fn inbound(
        channel: ChannelKind,
        conversation: Conversation,
        id: &str,
        age: TimeDelta,
    ) -> Message {
        let visibility = match conversation {
            Conversation::CommentThread { .. } | Conversation::TweetThread { .. } => {
                Visibility::Public
            }
            _ => Visibility::Private,
        };
        serde_json::from_value(serde_json::json!({
            "id": MessageId::generate(),
            "channel": channel,
            "platform_message_id": id,
            "author": {"platform_id": conversation.customer_id().unwrap_or("")},
            "conversation": conversation,
            "direction": Direction::Inbound,
            "event": MessageEvent::Created,
            "text": "Where is my order?",
            "visibility": visibility,
            "sent_at": now() - age,
            "received_at": now() - age,
        }))
        .expect("a message")
    }

    fn messenger(age: TimeDelta) -> Message {
        inbound(ChannelKind::Facebook, dm(), "m_1", age)
    }

    /// An agent's reply to `answering`, `age` before [`now`], delivered as `status`.
    fn outbound(
        answering: &Message,
        visibility: Visibility,
        status: DeliveryStatus,
        age: TimeDelta,
    ) -> Message {
        Message {
            id: MessageId::generate(),
            platform_message_id: None,
            direction: Direction::Outbound,
            author: Author {
                platform_id: "agent-1".into(),
                ..Author::default()
            },
            visibility,
            sent_at: now() - age,
            received_at: now() - age,
            replies_to: answering.platform_message_id.iter().cloned().collect(),
            delivery: Some(Delivery {
                status,
                ..Delivery::queued()
            }),
            ..answering.clone()
        }
    }

    fn contact(emails: &[&str]) -> Contact {
        Contact {
            id: ContactId::generate(),
            name: Some("Alex".into()),
            emails: emails
                .iter()
                .map(|e| EmailAddress::parse(e).unwrap())
                .collect(),
            identities: Vec::new(),
            created_at: now() - TimeDelta::days(30),
        }
    }

    const PLAIN: ReplyCapabilities = ReplyCapabilities { human_agent: false };
    const HUMAN_AGENT: ReplyCapabilities = ReplyCapabilities { human_agent: true };

    fn only(windows: Vec<ReplyWindow>) -> ReplyWindow {
        assert_eq!(windows.len(), 1, "{windows:#?}");
        windows.into_iter().next().unwrap()
    }

    fn windows_at(messages: &[Message], caps: ReplyCapabilities) -> Vec<ReplyWindow> {
        reply_windows(messages, None, now(), caps)
    }

    #[test]
    fn messenger_is_open_24_hours_from_the_customers_message_boundary_included() {
        let question = messenger(TimeDelta::hours(24));
        let w = only(windows_at(std::slice::from_ref(&question), PLAIN));
        assert_eq!(
            w,
            ReplyWindow {
                channel: ChannelKind::Facebook,
                visibility: Visibility::Private,
                can_reply: true,
                window_ends_at: Some(now()),
                message_tag: None,
                reason: None,
                alternative: None,
                fallback: "",
            }
        );
        assert_eq!(w.refusal(), None);

        let question = messenger(TimeDelta::hours(24) + TimeDelta::seconds(1));
        let w = only(windows_at(std::slice::from_ref(&question), PLAIN));
        assert!(!w.can_reply);
        assert_eq!(w.window_ends_at, Some(now() - TimeDelta::seconds(1)));
        assert_eq!(w.message_tag, None);
        let reason = w.reason.as_deref().unwrap();
        assert!(
            reason.contains("Messenger at 2026-11-19T09:59:59Z"),
            "{reason}"
        );
        assert!(
            reason.contains("closed at 2026-11-20T09:59:59Z"),
            "{reason}"
        );
        assert!(reason.contains("no Human Agent permission"), "{reason}");
    }

    #[test]
    fn human_agent_permission_extends_the_window_to_7_days_with_the_tag() {
        // Inside 24 hours: a plain response, but the window an agent can use lasts 7 days.
        let fresh = messenger(TimeDelta::hours(1));
        let w = only(windows_at(std::slice::from_ref(&fresh), HUMAN_AGENT));
        assert!(w.can_reply);
        assert_eq!(w.message_tag, None);
        assert_eq!(w.window_ends_at, Some(fresh.sent_at + TimeDelta::days(7)));

        // After 24 hours, up to 7 days included: tagged HUMAN_AGENT.
        for age in [TimeDelta::hours(30), TimeDelta::days(7)] {
            let question = messenger(age);
            let w = only(windows_at(std::slice::from_ref(&question), HUMAN_AGENT));
            assert!(w.can_reply, "{age}: {w:?}");
            assert_eq!(w.message_tag, Some("HUMAN_AGENT"));
            assert_eq!(
                w.window_ends_at,
                Some(question.sent_at + TimeDelta::days(7))
            );
        }

        // A second later, even a human agent may not answer.
        let question = messenger(TimeDelta::days(7) + TimeDelta::seconds(1));
        let w = only(windows_at(std::slice::from_ref(&question), HUMAN_AGENT));
        assert!(!w.can_reply);
        assert_eq!(w.window_ends_at, Some(now() - TimeDelta::seconds(1)));
        assert!(
            w.reason.as_deref().unwrap().contains("within 7 days"),
            "{w:?}"
        );

        // Without the permission the same 30-hour-old message is closed.
        let question = messenger(TimeDelta::hours(30));
        assert!(!only(windows_at(std::slice::from_ref(&question), PLAIN)).can_reply);
    }

    #[test]
    fn direct_window_gives_the_tag_and_never_another() {
        let last = now() - TimeDelta::hours(30);
        assert_eq!(
            direct_window(ChannelKind::Facebook, last, now(), HUMAN_AGENT),
            Ok(DirectWindow::HumanAgent {
                ends_at: last + HUMAN_AGENT_WINDOW
            })
        );
        assert_eq!(
            direct_window(ChannelKind::Facebook, now(), now(), HUMAN_AGENT)
                .unwrap()
                .tag(),
            None
        );
        let closed = direct_window(ChannelKind::Instagram, last, now(), PLAIN).unwrap_err();
        assert_eq!(closed.code, "window_closed");
        assert_eq!(closed.closed_at, last + STANDARD_WINDOW);
        assert!(closed.reason.contains("on Instagram at"), "{closed}");
    }

    #[test]
    fn the_customers_latest_new_message_opens_the_window_and_nothing_else_does() {
        let old = messenger(TimeDelta::days(2));
        let newer = inbound(ChannelKind::Facebook, dm(), "m_2", TimeDelta::hours(1));
        let w = only(windows_at(&[old.clone(), newer.clone()], PLAIN));
        assert!(w.can_reply);
        assert_eq!(w.window_ends_at, Some(newer.sent_at + STANDARD_WINDOW));

        // The agent's own message, an edit of the old message and a message in another
        // conversation reopen nothing.
        let answer = outbound(
            &old,
            Visibility::Private,
            DeliveryStatus::Sent,
            TimeDelta::hours(1),
        );
        let mut edit = old.clone();
        edit.id = MessageId::generate();
        edit.event = MessageEvent::Edited;
        edit.sent_at = now() - TimeDelta::minutes(5);
        let elsewhere = inbound(
            ChannelKind::Facebook,
            Conversation::DirectThread {
                account_id: PAGE.into(),
                user_id: "someone-else".into(),
            },
            "m_9",
            TimeDelta::minutes(1),
        );
        let mut removed = inbound(ChannelKind::Facebook, dm(), "m_3", TimeDelta::minutes(2));
        removed.event = MessageEvent::Removed;
        let thread = [old.clone(), answer, elsewhere, edit, removed];
        // The edit is the latest message that can be answered; its conversation decides.
        let w = reply_windows(&thread, None, now(), PLAIN);
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(!w[0].can_reply, "{w:?}");
        assert_eq!(w[0].window_ends_at, Some(old.sent_at + STANDARD_WINDOW));
    }

    #[test]
    fn a_closed_window_names_the_contacts_email_as_the_alternative() {
        let question = messenger(TimeDelta::hours(30));
        let known = contact(&["alex@example.com", "alex@work.example"]);
        let w = only(reply_windows(
            std::slice::from_ref(&question),
            Some(&known),
            now(),
            PLAIN,
        ));
        assert_eq!(
            w.alternative,
            Some(ReplyAlternative {
                channel: ChannelKind::Email,
                address: EmailAddress::parse("alex@example.com").unwrap(),
            })
        );
        let refusal = w.refusal().unwrap();
        assert!(
            refusal.contains("Answer by email instead: alex@example.com."),
            "{refusal}"
        );

        let unknown = contact(&[]);
        let w = only(reply_windows(
            std::slice::from_ref(&question),
            Some(&unknown),
            now(),
            PLAIN,
        ));
        assert_eq!(w.alternative, None);
        assert!(w.refusal().unwrap().contains("no email address"), "{w:?}");

        // An open window offers no alternative, even when the contact has an address.
        let fresh = messenger(TimeDelta::hours(1));
        let w = only(reply_windows(
            std::slice::from_ref(&fresh),
            Some(&known),
            now(),
            PLAIN,
        ));
        assert!(w.can_reply);
        assert_eq!(w.alternative, None);
    }

    #[test]
    fn a_comment_can_be_answered_publicly_always_and_privately_within_7_days() {
        for (age, private_open) in [
            (TimeDelta::days(7), true),
            (TimeDelta::days(7) + TimeDelta::seconds(1), false),
        ] {
            let comment = inbound(ChannelKind::Facebook, comments(), COMMENT, age);
            let w = windows_at(std::slice::from_ref(&comment), HUMAN_AGENT);
            assert_eq!(w.len(), 2, "{w:#?}");
            assert_eq!(
                (w[0].visibility, w[0].can_reply, w[0].window_ends_at),
                (Visibility::Public, true, None)
            );
            assert_eq!(w[1].visibility, Visibility::Private);
            assert_eq!(w[1].can_reply, private_open, "{age}: {w:?}");
            assert_eq!(
                w[1].window_ends_at,
                Some(comment.sent_at + PRIVATE_REPLY_WINDOW)
            );
            if !private_open {
                let refusal = w[1].refusal().unwrap();
                assert!(refusal.ends_with("Reply publicly instead."), "{refusal}");
            }
        }
    }

    #[test]
    fn a_comment_has_one_private_reply() {
        let comment = inbound(
            ChannelKind::Instagram,
            comments(),
            COMMENT,
            TimeDelta::days(1),
        );
        for (status, open) in [
            (DeliveryStatus::Queued, false),
            (DeliveryStatus::Sent, false),
            (DeliveryStatus::Unknown, false),
            (DeliveryStatus::Failed, true),
        ] {
            let earlier = outbound(&comment, Visibility::Private, status, TimeDelta::hours(2));
            let public = outbound(
                &comment,
                Visibility::Public,
                DeliveryStatus::Sent,
                TimeDelta::hours(1),
            );
            let w = windows_at(&[comment.clone(), earlier.clone(), public], PLAIN);
            assert!(w[0].can_reply, "public replies have no limit");
            assert_eq!(w[1].can_reply, open, "{status:?}: {w:?}");
            if !open {
                let reason = w[1].reason.as_deref().unwrap();
                assert!(reason.contains("one private reply per comment"), "{reason}");
                assert!(reason.contains(earlier.id.as_str()), "{reason}");
            }
        }
    }

    #[test]
    fn an_edited_comment_counts_from_when_it_was_written() {
        let comment = inbound(
            ChannelKind::Facebook,
            comments(),
            COMMENT,
            TimeDelta::days(8),
        );
        let mut edited = comment.clone();
        edited.id = MessageId::generate();
        edited.event = MessageEvent::Edited;
        edited.sent_at = now() - TimeDelta::hours(1);
        let w = windows_at(&[comment.clone(), edited], PLAIN);
        assert!(!w[1].can_reply, "{w:?}");
        assert_eq!(
            w[1].window_ends_at,
            Some(comment.sent_at + PRIVATE_REPLY_WINDOW)
        );
    }

    #[test]
    fn email_chat_and_x_have_no_window() {
        let year = TimeDelta::days(365);
        let mut mail = inbound(
            ChannelKind::Email,
            Conversation::EmailThread {
                root_message_id: "a1@mail.example".into(),
            },
            "a1@mail.example",
            year,
        );
        mail.email = Some(EmailDetails::default());
        let chat = inbound(
            ChannelKind::Chat,
            Conversation::ChatSession {
                session_id: "s1".into(),
            },
            "s1/1",
            year,
        );
        let tweet = inbound(
            ChannelKind::Twitter,
            Conversation::TweetThread {
                conversation_id: "1".into(),
                user_id: "2".into(),
            },
            "1",
            year,
        );
        let x_dm = inbound(
            ChannelKind::Twitter,
            Conversation::DirectMessages {
                account_id: "9".into(),
                user_id: "2".into(),
            },
            "dm_1",
            year,
        );
        let ticket = [mail, chat, tweet];
        let w = windows_at(&ticket, PLAIN);
        let seen: Vec<_> = w.iter().map(|w| (w.channel, w.visibility)).collect();
        assert_eq!(
            seen,
            [
                (ChannelKind::Twitter, Visibility::Public),
                (ChannelKind::Twitter, Visibility::Private),
                (ChannelKind::Email, Visibility::Private),
                (ChannelKind::Chat, Visibility::Private),
            ]
        );
        assert!(w
            .iter()
            .all(|w| w.can_reply && w.window_ends_at.is_none() && w.reason.is_none()));
        let w = only(windows_at(&[x_dm], PLAIN));
        assert!(w.can_reply && w.window_ends_at.is_none());
    }

    #[test]
    fn automatic_mail_and_removed_messages_are_not_answered() {
        let mut bounce = inbound(
            ChannelKind::Email,
            Conversation::EmailThread {
                root_message_id: "dsn@mx.example".into(),
            },
            "dsn@mx.example",
            TimeDelta::hours(1),
        );
        bounce.email = Some(EmailDetails {
            auto_submitted: true,
            ..EmailDetails::default()
        });
        let mut removed = messenger(TimeDelta::hours(1));
        removed.event = MessageEvent::Removed;
        assert_eq!(windows_at(&[bounce, removed], PLAIN), []);
        assert_eq!(windows_at(&[], PLAIN), []);
    }
}
