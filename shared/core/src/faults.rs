//! Fault injection: a ticket store that fails writes the way a real store fails, so the
//! promises built on it (nothing accepted is lost, nothing is stored or sent twice) can be
//! checked under failure, in tests and in rehearsals (`crossdesk-local --inject-store-faults`).
//!
//! A failure strikes before the write (nothing written) or after it (written, but the caller
//! hears an error, like a timeout on a write that landed): the second kind is the one that tests
//! idempotency. Every injected failure is a retryable [`StoreError::Unavailable`]. Reads always
//! work. Which writes fail is a [share](StoreFaults) chosen by a seeded hash of the write's
//! sequence number (half before, half after), or a [script](FaultyTicketStore::scripted).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::{
    Appended, ChannelKind, Contact, ContactId, ConversationKey, Delivery, Identity, Message,
    MessageId, Revision, Route, StoreError, Ticket, TicketFilter, TicketId, TicketStatus,
    TicketStore,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tracing::warn;

/// Which writes fail: a share of them, chosen by a seeded hash.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoreFaults {
    /// The share of writes that fail, from 0 to 1.
    pub share: f64,
    /// Seeds the choice of failing calls.
    pub seed: u64,
}

impl StoreFaults {
    /// Reads `SHARE` (a number from 0 to 1, or a percentage like `5%`).
    pub fn parse(share: &str, seed: u64) -> Result<Self, String> {
        let text = share.trim();
        let value = match text.strip_suffix('%') {
            Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
            None => text.parse::<f64>(),
        }
        .map_err(|_| format!("`{share}` is not a share (0.05 or 5%)"))?;
        if !(0.0..=1.0).contains(&value) {
            return Err(format!("`{share}` is not between 0 and 1 (0% and 100%)"));
        }
        Ok(StoreFaults { share: value, seed })
    }
}

/// Where an injected failure strikes a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strike {
    /// The write happens.
    None,
    /// The write fails before it reaches the store.
    Before,
    /// The write lands, then the caller hears an error.
    After,
}

impl StoreFaults {
    /// What happens to write number `n`.
    pub fn strike(&self, n: u64) -> Strike {
        let roll = splitmix64(self.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        // The top 53 bits as a number in [0, 1).
        let unit = (roll >> 11) as f64 / (1u64 << 53) as f64;
        if unit >= self.share {
            Strike::None
        } else if roll & 1 == 0 {
            Strike::Before
        } else {
            Strike::After
        }
    }
}

/// Which writes fail.
enum Plan {
    Share(StoreFaults),
    /// The next writes, in order; after the last one every write works.
    Script(Mutex<VecDeque<Strike>>),
}

/// A [`TicketStore`] that fails some of its writes (reads always work).
pub struct FaultyTicketStore {
    inner: Arc<dyn TicketStore>,
    plan: Plan,
    writes: AtomicU64,
    injected: AtomicU64,
}

impl FaultyTicketStore {
    /// Wraps a store, failing a share of its writes.
    pub fn new(inner: Arc<dyn TicketStore>, faults: StoreFaults) -> Self {
        Self::with_plan(inner, Plan::Share(faults))
    }

    /// Wraps a store, striking its next writes as scripted; later writes work.
    pub fn scripted(
        inner: Arc<dyn TicketStore>,
        strikes: impl IntoIterator<Item = Strike>,
    ) -> Self {
        Self::with_plan(
            inner,
            Plan::Script(Mutex::new(strikes.into_iter().collect())),
        )
    }

    fn with_plan(inner: Arc<dyn TicketStore>, plan: Plan) -> Self {
        FaultyTicketStore {
            inner,
            plan,
            writes: AtomicU64::new(0),
            injected: AtomicU64::new(0),
        }
    }

    /// How many failures were injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    fn strike(&self) -> Strike {
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        let strike = match &self.plan {
            Plan::Share(faults) => faults.strike(n),
            Plan::Script(script) => script
                .lock()
                .map(|mut s| s.pop_front())
                .ok()
                .flatten()
                .unwrap_or(Strike::None),
        };
        if strike != Strike::None {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        strike
    }

    /// Runs a write with the failure this call draws.
    async fn write<T>(
        &self,
        what: &'static str,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match self.strike() {
            Strike::None => call.await,
            Strike::Before => {
                warn!(write = what, "injected store fault: failed before writing");
                Err(StoreError::Unavailable(format!(
                    "injected fault: {what} failed before writing"
                )))
            }
            Strike::After => {
                let result = call.await;
                warn!(write = what, "injected store fault: failed after writing");
                result.and(Err(StoreError::Unavailable(format!(
                    "injected fault: {what} written, answer lost"
                ))))
            }
        }
    }
}

/// SplitMix64: a small, well-mixed hash for choosing calls.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[async_trait]
impl TicketStore for FaultyTicketStore {
    async fn find_ticket_by_platform_ids(
        &self,
        channel: ChannelKind,
        platform_ids: &[String],
    ) -> Result<Option<TicketId>, StoreError> {
        self.inner
            .find_ticket_by_platform_ids(channel, platform_ids)
            .await
    }

    async fn find_ticket_by_conversation(
        &self,
        key: &ConversationKey,
    ) -> Result<Option<TicketId>, StoreError> {
        self.inner.find_ticket_by_conversation(key).await
    }

    async fn find_contact_by_identity(
        &self,
        identity: &Identity,
    ) -> Result<Option<ContactId>, StoreError> {
        self.inner.find_contact_by_identity(identity).await
    }

    async fn resolve_contact(
        &self,
        identities: &[Identity],
        name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<crate::ports::ResolvedContact, StoreError> {
        self.write(
            "resolve_contact",
            self.inner.resolve_contact(identities, name, now),
        )
        .await
    }

    async fn append_message(
        &self,
        route: &Route,
        message: &Message,
        contact: &ContactId,
    ) -> Result<Appended, StoreError> {
        self.write(
            "append_message",
            self.inner.append_message(route, message, contact),
        )
        .await
    }

    async fn revise_message(
        &self,
        channel: ChannelKind,
        platform_message_id: &str,
        revision: &Revision,
    ) -> Result<Option<(TicketId, MessageId)>, StoreError> {
        self.write(
            "revise_message",
            self.inner
                .revise_message(channel, platform_message_id, revision),
        )
        .await
    }

    async fn get_ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        self.inner.get_ticket(id).await
    }

    async fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<Ticket>, StoreError> {
        self.inner.list_tickets(filter).await
    }

    async fn list_messages(&self, ticket: &TicketId) -> Result<Vec<Message>, StoreError> {
        self.inner.list_messages(ticket).await
    }

    async fn list_first_messages(
        &self,
        ticket: &TicketId,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.inner.list_first_messages(ticket, limit).await
    }

    async fn get_message(
        &self,
        ticket: &TicketId,
        message: &MessageId,
    ) -> Result<Option<Message>, StoreError> {
        self.inner.get_message(ticket, message).await
    }

    async fn get_contact(&self, id: &ContactId) -> Result<Option<Contact>, StoreError> {
        self.inner.get_contact(id).await
    }

    async fn set_status(
        &self,
        ticket: &TicketId,
        status: TicketStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Ticket>, StoreError> {
        self.write("set_status", self.inner.set_status(ticket, status, now))
            .await
    }

    async fn set_delivery(
        &self,
        ticket: &TicketId,
        message: &MessageId,
        expected: &Delivery,
        delivery: &Delivery,
    ) -> Result<bool, StoreError> {
        self.write(
            "set_delivery",
            self.inner.set_delivery(ticket, message, expected, delivery),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_read_as_numbers_or_percentages() {
        assert_eq!(StoreFaults::parse("0.05", 1).unwrap().share, 0.05);
        assert_eq!(StoreFaults::parse("5%", 1).unwrap().share, 0.05);
        for bad in ["", "x", "1.5", "-1", "120%"] {
            assert!(StoreFaults::parse(bad, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn about_the_share_of_writes_fail_half_before_and_half_after() {
        let faults = StoreFaults {
            share: 0.05,
            seed: 7,
        };
        let strikes: Vec<Strike> = (0..100_000).map(|n| faults.strike(n)).collect();
        let before = strikes.iter().filter(|s| **s == Strike::Before).count();
        let after = strikes.iter().filter(|s| **s == Strike::After).count();
        assert!(
            (4_500..5_500).contains(&(before + after)),
            "{before} + {after}"
        );
        assert!(before.abs_diff(after) < 500, "{before} vs {after}");
        let again: Vec<Strike> = (0..100_000).map(|n| faults.strike(n)).collect();
        assert_eq!(strikes, again, "the same seed fails the same writes");
    }
}
