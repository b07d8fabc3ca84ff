//! A small builder of normalized messages for the contract tests, so no test pastes JSON.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crossdesk_core::mail_signature::EmailThreadKey;
use crossdesk_core::mail_threading::EmailThreading;
use crossdesk_core::{
    Attachment, AttachmentKind, Author, ChannelKind, Conversation, Delivery, Direction,
    EmailAddress, EmailDetails, Message, MessageEvent, MessageId, RawRef, TicketId, Visibility,
};

/// The Facebook page (and Twitter account) the test conversations are with.
pub const PAGE_ID: &str = "page-1";

/// The support address the test emails are sent to.
pub const SUPPORT_ADDRESS: &str = "support@crossdesk.example";

/// The email thread key the contract's writer signs and checks references with.
pub const EMAIL_THREAD_KEY: &[u8] = b"contract-test-email-thread-key-0123456789";

/// The contract's email thread key.
pub fn thread_key() -> EmailThreadKey {
    EmailThreadKey::new(EMAIL_THREAD_KEY).expect("a key long enough")
}

/// What the contract's writer knows of email: [`thread_key`] and [`SUPPORT_ADDRESS`].
pub fn email_threading() -> EmailThreading {
    EmailThreading {
        thread_key: Some(thread_key()),
        support_address: Some(EmailAddress::parse(SUPPORT_ADDRESS).expect("a valid address")),
    }
}

/// A fixed instant (2024-05-01 10:00:00 UTC) plus `secs` seconds: tests speak in offsets.
pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0)
        .single()
        .expect("a valid base instant")
        + Duration::seconds(secs)
}

/// Builds one [`Message`], starting from a channel-shaped inbound message.
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    message: Message,
}

impl MessageBuilder {
    fn base(
        channel: ChannelKind,
        platform_id: &str,
        conversation: Conversation,
        author: Author,
        visibility: Visibility,
    ) -> Self {
        MessageBuilder {
            message: Message {
                id: MessageId::generate(),
                channel,
                platform_message_id: Some(platform_id.to_string()),
                conversation,
                direction: Direction::Inbound,
                event: MessageEvent::Created,
                author,
                text: format!("message {platform_id}"),
                attachments: Vec::new(),
                visibility,
                sent_at: at(0),
                received_at: at(0),
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
            },
        }
    }

    fn person(platform_id: &str) -> Author {
        Author {
            platform_id: platform_id.to_string(),
            ..Author::default()
        }
    }

    /// A Messenger message from `user` to the page, with platform id `mid`.
    pub fn facebook_dm(user: &str, mid: &str) -> Self {
        Self::base(
            ChannelKind::Facebook,
            mid,
            Conversation::DirectThread {
                account_id: PAGE_ID.to_string(),
                user_id: user.to_string(),
            },
            Self::person(user),
            Visibility::Private,
        )
    }

    /// A comment by `user` under the page's post `post`, with platform id `comment_id`.
    pub fn facebook_comment(post: &str, user: &str, comment_id: &str) -> Self {
        Self::base(
            ChannelKind::Facebook,
            comment_id,
            Conversation::CommentThread {
                post_id: post.to_string(),
                user_id: user.to_string(),
            },
            Self::person(user),
            Visibility::Public,
        )
    }

    /// A tweet by `user` in conversation `conversation`, with tweet id `tweet_id`.
    pub fn tweet(conversation: &str, user: &str, tweet_id: &str) -> Self {
        Self::base(
            ChannelKind::Twitter,
            tweet_id,
            Conversation::TweetThread {
                conversation_id: conversation.to_string(),
                user_id: user.to_string(),
            },
            Self::person(user),
            Visibility::Public,
        )
    }

    /// An email from `from` to support with Message-ID `message_id`, starting its own thread.
    pub fn email(from: &str, message_id: &str) -> Self {
        let address = EmailAddress::parse(from).expect("a valid test address");
        let mut builder = Self::base(
            ChannelKind::Email,
            message_id,
            Conversation::EmailThread {
                root_message_id: message_id.to_string(),
            },
            Author {
                platform_id: address.as_str().to_string(),
                email: Some(address),
                ..Author::default()
            },
            Visibility::Private,
        );
        builder.message.subject = Some("Question".to_string());
        builder.message.email = Some(EmailDetails {
            message_id: message_id.to_string(),
            to: vec![EmailAddress::parse(SUPPORT_ADDRESS).expect("a valid support address")],
            ..EmailDetails::default()
        });
        builder
    }

    /// A website chat message from `visitor` in session `session`, with platform id `id`.
    pub fn chat(session: &str, visitor: &str, id: &str) -> Self {
        Self::base(
            ChannelKind::Chat,
            id,
            Conversation::ChatSession {
                session_id: session.to_string(),
            },
            Self::person(visitor),
            Visibility::Private,
        )
    }

    /// The text.
    pub fn text(mut self, text: &str) -> Self {
        self.message.text = text.to_string();
        self
    }

    /// Sent and received `secs` seconds after [`at`]`(0)`.
    pub fn at(mut self, secs: i64) -> Self {
        self.message.sent_at = at(secs);
        self.message.received_at = at(secs);
        self
    }

    /// Sent at `sent` and received at `received` (seconds after [`at`]`(0)`).
    pub fn sent_received(mut self, sent: i64, received: i64) -> Self {
        self.message.sent_at = at(sent);
        self.message.received_at = at(received);
        self
    }

    /// The author's display name.
    pub fn named(mut self, name: &str) -> Self {
        self.message.author.name = Some(name.to_string());
        self
    }

    /// The author's email address.
    pub fn author_email(mut self, address: &str) -> Self {
        self.message.author.email = Some(EmailAddress::parse(address).expect("a valid address"));
        self
    }

    /// Written by the page/account to the customer (an echo of a reply sent outside Crossdesk).
    pub fn outbound(mut self) -> Self {
        self.message.direction = Direction::Outbound;
        self.message.author = Author {
            platform_id: PAGE_ID.to_string(),
            name: Some("Crossdesk Support".to_string()),
            ..Author::default()
        };
        self
    }

    /// An agent's reply not sent yet: outbound, no platform id, delivery queued.
    pub fn unsent_reply(mut self, agent: &str) -> Self {
        self = self.outbound();
        self.message.platform_message_id = None;
        self.message.author = Author {
            platform_id: agent.to_string(),
            name: Some(format!("Agent {agent}")),
            ..Author::default()
        };
        self.message.delivery = Some(Delivery::queued());
        self
    }

    /// An edit of the platform message, with its new text.
    pub fn edited(mut self, text: &str) -> Self {
        self.message.event = MessageEvent::Edited;
        self.message.text = text.to_string();
        self
    }

    /// A removal of the platform message.
    pub fn removed(mut self) -> Self {
        self.message.event = MessageEvent::Removed;
        self
    }

    /// Answers these platform ids (newest first); for email also `In-Reply-To`/`References`.
    pub fn replying_to(mut self, ids: &[&str]) -> Self {
        self.message.replies_to = ids.iter().map(|s| s.to_string()).collect();
        if let Some(email) = &mut self.message.email {
            email.in_reply_to = ids.first().map(|s| s.to_string()).into_iter().collect();
            email.references = ids.iter().rev().map(|s| s.to_string()).collect();
        }
        self
    }

    /// Puts an email in the thread started by `root`.
    pub fn in_thread(mut self, root: &str) -> Self {
        self.message.conversation = Conversation::EmailThread {
            root_message_id: root.to_string(),
        };
        self
    }

    /// Names a ticket (plus-address or `[#ID]` in the subject).
    pub fn ticket_ref(mut self, ticket: &TicketId) -> Self {
        self.message.ticket_ref = Some(ticket.clone());
        self
    }

    /// Names a ticket through a plus-address carrying this signature
    /// (`support+<ticket>.<signature>@…`).
    pub fn signed_ticket_ref(mut self, ticket: &TicketId, signature: &str) -> Self {
        self.message.ticket_ref = Some(ticket.clone());
        if let Some(email) = &mut self.message.email {
            email.ticket_signature = Some(signature.to_string());
        }
        self
    }

    /// Also addressed to (`To`/`Cc`) these addresses, besides support.
    pub fn copying(mut self, addresses: &[&str]) -> Self {
        if let Some(email) = &mut self.message.email {
            email.to.extend(
                addresses
                    .iter()
                    .map(|a| EmailAddress::parse(a).expect("a valid address")),
            );
        }
        self
    }

    /// Sent by a machine: an auto-reply or a bounce (`email.auto_submitted`).
    pub fn automatic(mut self) -> Self {
        if let Some(email) = &mut self.message.email {
            email.auto_submitted = true;
        }
        self
    }

    /// The subject line.
    pub fn subject(mut self, subject: &str) -> Self {
        self.message.subject = Some(subject.to_string());
        self
    }

    /// Fills every optional field (attachments, email details, raw reference, replies), to check
    /// that a store gives back exactly what it was given.
    pub fn with_everything(mut self) -> Self {
        self.message.attachments = vec![
            Attachment {
                kind: AttachmentKind::Image,
                url: Some("https://cdn.example/photo.jpg".to_string()),
                object_ref: None,
                name: Some("photo.jpg".to_string()),
                size: Some(48_213),
                content_type: Some("image/jpeg".to_string()),
                sha256: Some(
                    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_string(),
                ),
                fetch_error: None,
            },
            Attachment {
                kind: AttachmentKind::File,
                url: None,
                object_ref: Some("raw/sha256:abc#part=2".to_string()),
                name: Some("invoice – März.pdf".to_string()),
                size: None,
                content_type: Some("application/pdf".to_string()),
                sha256: None,
                fetch_error: Some("download failed: HTTP 404".to_string()),
            },
        ];
        self.message.raw = Some(RawRef::of(b"raw payload"));
        self.message.author.name = Some("Zoë O'Brien 🎧".to_string());
        self.message.author.handle = Some("@zoe".to_string());
        self.message.text = "Line one\n\n  «quoted» \"text\" with ümlauts\tand tabs".to_string();
        self.message.subject = Some("Re: [#K3F9Q2XA] Invoice".to_string());
        if let Some(email) = &mut self.message.email {
            email.quoted_text = Some("> earlier text".to_string());
            email.html_only = true;
            email.auto_submitted = true;
            email.ticket_signature = Some("0123456789abcdefghjkmnpqrs".to_string());
            email
                .to
                .push(EmailAddress::parse("cc@example.org").expect("valid"));
        }
        self.message.sent_at += Duration::nanoseconds(123_456_789);
        self
    }

    /// The message.
    pub fn build(self) -> Message {
        self.message
    }
}
