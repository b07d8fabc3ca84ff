//! The contract every [`TicketStore`](crossdesk_core::TicketStore) adapter passes: one suite
//! of async tests, run against the embedded SQLite store now and the DynamoDB store later.
//!
//! An adapter crate runs the whole suite with one line in a test file:
//!
//! ```ignore
//! crossdesk_store_contract::store_contract_tests!(|| async {
//!     Arc::new(SqliteStore::in_memory().unwrap()) as Arc<dyn TicketStore>
//! });
//! ```
//!
//! The factory is called once per test and may be asynchronous (create a fresh DynamoDB table).
//! It returns a [`Fixture`]: the store itself, or `(store, guard)` where the guard (a temp
//! directory, a table to delete) is kept alive until the test ends.

#![warn(missing_docs)]

use std::future::Future;
use std::sync::Arc;

pub mod builder;
pub mod contract;
pub mod events;
pub mod health;
pub mod sla;
pub mod workflow;

pub use builder::{at, MessageBuilder};

/// What a contract test factory produces: a fresh, empty port `P` under test (a ticket store,
/// a workflow store, a channel health store, an event ledger), and whatever keeps it alive.
pub trait Fixture<P: ?Sized>: Send {
    /// The port under test.
    fn port(&self) -> Arc<P>;
}

impl<P: ?Sized + Send + Sync> Fixture<P> for Arc<P> {
    fn port(&self) -> Arc<P> {
        Arc::clone(self)
    }
}

impl<P: ?Sized + Send + Sync, G: Send> Fixture<P> for (Arc<P>, G) {
    fn port(&self) -> Arc<P> {
        Arc::clone(&self.0)
    }
}

/// Runs one contract test (of any of the suites) on a multi-threaded runtime (so the
/// concurrency tests race for real) against a port made by `factory`.
pub fn run<P, F, Fut, X, T, TFut>(factory: F, test: T)
where
    P: ?Sized,
    F: FnOnce() -> Fut,
    Fut: Future<Output = X>,
    X: Fixture<P>,
    T: FnOnce(Arc<P>) -> TFut,
    TFut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime for the contract test");
    runtime.block_on(async move {
        let fixture = factory().await;
        test(fixture.port()).await;
        drop(fixture);
    });
}

/// Expands to one `#[test]` per contract test, each on a fresh store from `$factory`
/// (a closure returning a future of a [`Fixture`]).
#[macro_export]
macro_rules! store_contract_tests {
    ($factory:expr) => {
        $crate::store_contract_tests!(@each $factory;
            new_conversation_creates_a_ticket,
            same_conversation_goes_to_the_same_ticket,
            late_message_does_not_move_activity_back,
            first_messages_are_the_start_of_the_messages,
            a_message_is_read_by_its_id,
            email_reply_threads_by_references,
            platform_id_lookup_takes_the_first_known_id,
            ticket_reference_threads_into_the_ticket,
            reference_to_a_missing_ticket_is_ignored,
            a_stranger_cannot_thread_into_someone_elses_ticket,
            an_unsigned_or_forged_reference_does_not_thread,
            a_participant_threads_by_signed_references,
            a_copied_participant_threads_and_a_forward_recipient_does_not,
            automatic_mail_never_reopens_a_ticket,
            a_bounce_of_crossdesk_mail_is_kept_with_its_ticket,
            own_mail_coming_back_is_not_ticketed,
            related_tickets_are_stored_with_a_new_ticket,
            echo_goes_into_the_customers_conversation,
            routed_message_claims_only_a_free_conversation_key,
            routing_to_a_missing_ticket_is_rejected,
            duplicates_are_stored_once,
            platform_ids_are_scoped_by_channel,
            retried_append_of_one_message_is_stored_once,
            unsent_replies_are_never_deduplicated,
            concurrent_duplicates_are_stored_once,
            concurrent_first_messages_make_one_ticket,
            many_concurrent_deliveries_thread_exactly,
            edit_replaces_the_text,
            removal_marks_the_message_removed,
            removal_of_an_unknown_message_is_ignored,
            edit_of_an_unknown_message_is_stored,
            inbound_message_reopens_a_solved_ticket,
            set_status_updates_the_ticket,
            set_delivery_records_the_delivery,
            sent_reply_takes_its_platform_id,
            echo_of_a_reply_confirms_it_before_the_sender_does,
            echo_confirms_a_reply_left_unknown,
            echo_sent_outside_crossdesk_is_stored_once_as_outbound,
            echo_naming_a_message_that_is_no_reply_is_stored_on_its_own,
            the_same_email_is_one_contact_and_a_chat_email_is_not,
            different_customers_are_different_contacts,
            resolve_contact_adds_missing_identities,
            resolve_contact_never_merges_contacts,
            anonymous_contacts_are_distinct,
            concurrent_resolves_make_one_contact,
            tickets_are_listed_newest_first,
            tickets_are_paged_with_a_cursor,
            messages_are_listed_oldest_first,
            stored_message_reads_back_exactly,
            preview_is_the_first_line_cut_to_140_characters,
            unknown_ids_read_as_nothing,
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::run($factory, $crate::contract::$name);
            }
        )*
    };
}
