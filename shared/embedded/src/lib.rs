//! Crossdesk's embedded adapters for the local stack, all in one SQLite file:
//! [`SqliteStore`] (the [`TicketStore`](crossdesk_core::TicketStore), and the
//! [`WorkflowStore`](crossdesk_core::workflow::WorkflowStore) beside it), [`SqliteQueue`] (the
//! inbound and outbound queues, with leases and dead letters) and [`SqliteArchive`] (the raw
//! payload archive).
//!
//! Open one [`Database`] and build all three from it to share one connection, or open each from
//! the same path (WAL mode lets several connections share the file). Every call runs on the
//! database's own thread, which commits the writes waiting together in one `BEGIN IMMEDIATE`
//! transaction, each in its own savepoint (group commit: one sync for many writes).
//!
//! # Schema (version 4, in `PRAGMA user_version`)
//!
//! The connection runs with `journal_mode=WAL`, `synchronous=FULL` (`NORMAL` with
//! [`Durability::Normal`]), `foreign_keys=ON` and a
//! 5 s busy timeout. Timestamps are integers: nanoseconds since the Unix epoch, UTC.
//!
//! | table | columns | keys and indexes |
//! |---|---|---|
//! | `tickets` | `id`, `status` (`open`/`pending`/`solved`), `channel`, `subject`, `contact_id`, `conversation_key` (the one that started it), `created_at`, `updated_at`, `preview`, `message_count`, `related_tickets` (JSON array of ticket ids; version 2 adds it to older files) | primary key `id`; `(updated_at DESC, id)`; `(status, updated_at DESC, id)` |
//! | `messages` | `seq` (insertion order), `id`, `ticket_id`, `channel`, `platform_message_id` (null for a reply not yet sent), `sent_at`, `revised_at` (last edit/removal applied), `body` (the `Message` as JSON) | primary key `seq`; unique `id`; **unique `(channel, platform_message_id)`**: the dedup; `(ticket_id, sent_at, seq)` |
//! | `conversation_keys` | `key`, `ticket_id` | primary key `key`: one ticket per conversation |
//! | `contacts` | `seq`, `id`, `name`, `created_at` | unique `id` |
//! | `contact_identities` | `seq`, `identity` (`facebook:<psid>`, `email:<address>`, …), `contact_id` | **unique `identity`**: an identity leads to one contact; a contact's `emails` are its `email:` identities |
//! | `queue_items` | `id` (FIFO order), `queue` (`inbound`/`outbound`/`events`), `body` (JSON), `enqueued_at`, `visible_at`, `attempts`, `lease` (token of the current lease), `last_error` | `(queue, id)` |
//! | `dead_letters` | `id` (the item's), `queue`, `body`, `enqueued_at`, `attempts`, `reason`, `dead_at` | `(queue, id)` |
//! | `channel_state` | `channel`, `last_inbound_at`, `reauth_code`, `reauth_reason`, `reauth_at` (the re-authorization mark, null when clear; version 3) | primary key `channel` |
//! | `channel_checks` | `channel`, `check_name`, `status` (`ok`/`warning`/`failing`), `reason`, `checked_at`: each check's latest result (version 3) | primary key `(channel, check_name)` |
//! | `event_deliveries` | `event_id`, `endpoint` (key of the endpoint URL), `delivered_at`: which endpoint has which outgoing event | primary key `(event_id, endpoint)` |
//! | `failed_events` | `event_id`, `body` (the `FailedEvent` as JSON), `failed_at`: outgoing events given up on, for replay | primary key `event_id`; `(failed_at DESC, event_id)` |
//! | `ticket_workflows` | `ticket_id`, `contact_id`, `version` (compare-and-set), `updated_at`, `first_response_due` (set only while the ticket awaits its first response), `body` (the `TicketWorkflow` as JSON) (version 4) | primary key `ticket_id`; `(updated_at DESC, ticket_id)`; `(contact_id, updated_at DESC, ticket_id)`; `(first_response_due, ticket_id)` where set |
//! | `contact_links` | `source`, `target`, `at`: `source` is merged into `target` (version 4) | primary key `source`: merged into one contact at most; `(target, source)` |
//! | `link_suggestions` | `contact_id`, `other_id`, `identity`, `at`: one row each way (version 4) | primary key `(contact_id, other_id)` |
//! | `agent_preferences` | `agent_id`, `body` (the `AgentPreferences` as JSON) (version 4) | primary key `agent_id` |
//! | `notification_windows` | `window_key`, `at`: claimed notification windows, pruned after a day (version 4) | primary key `window_key`; `(at)` |
//! | `cursors` | `name`, `value` (version 4) | primary key `name` |
//! | `raw_payloads` | `ref` (`sha256:<hex>` of the body), `channel`, `body` (bytes), `stored_at` | primary key `ref` |
//!
//! `tickets.contact_id` is not a foreign key: like the DynamoDB adapter, the store trusts the
//! contact the writer resolved.

#![warn(missing_docs)]

mod archive;
mod db;
mod events;
mod group;
mod health;
mod media;
mod queue;
mod store;
mod workflow;

pub use archive::SqliteArchive;
pub use db::{Database, Durability, OpenError, SCHEMA_VERSION};
pub use events::SqliteEventLedger;
pub use media::{DirectoryMediaStore, MediaLinkError, ServedMedia};
pub use queue::{DeadLetter, Leased, QueueName, Receipt, SqliteQueue, DEFAULT_MAX_ATTEMPTS};
pub use store::{SqliteStore, MAX_LIST_LIMIT, PREVIEW_CHARS};
