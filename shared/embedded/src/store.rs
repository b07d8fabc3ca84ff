//! [`SqliteStore`]: the ticket store of the local stack.

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crossdesk_core::{
    distinct_identities, first_line, Appended, ChannelKind, Contact, ContactId, ConversationKey,
    Delivery, EmailAddress, Identity, Message, MessageEvent, MessageId, ResolvedContact, Revision,
    Route, StoreError, Ticket, TicketFilter, TicketId, TicketStatus, TicketStore,
};
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Row};
use tracing::{debug, warn};

use crate::db::{encode, from_nanos, to_nanos, write_tx, Database, DbError};

pub use crossdesk_core::{MAX_LIST_LIMIT, PREVIEW_CHARS};

/// A [`TicketStore`] in a SQLite database (see the crate docs for the schema).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: Database,
}

impl SqliteStore {
    /// Opens (creating when missing) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(SqliteStore::new(Database::open(path)?))
    }

    /// A fresh, private store in memory, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Ok(SqliteStore::new(Database::in_memory()?))
    }

    /// A store over an already opened database (shared with the queue and the archive).
    pub fn new(db: Database) -> Self {
        SqliteStore { db }
    }

    /// The database the store uses.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The first `limit` messages of a ticket, oldest first.
    async fn first_messages(
        &self,
        ticket: &TicketId,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError> {
        let ticket = ticket.clone();
        let bodies = self
            .db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT body FROM messages WHERE ticket_id = ?1 ORDER BY sent_at, seq LIMIT ?2",
                )?;
                let bodies = stmt
                    .query_map(params![ticket.as_str(), limit], |row| {
                        row.get::<_, String>(0)
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(bodies)
            })
            .await?;
        // Decoded here, not on the database's thread.
        Ok(bodies
            .iter()
            .map(|body| serde_json::from_str(body).map_err(DbError::from))
            .collect::<Result<_, _>>()?)
    }
}

#[async_trait]
impl TicketStore for SqliteStore {
    async fn find_ticket_by_platform_ids(
        &self,
        channel: ChannelKind,
        platform_ids: &[String],
    ) -> Result<Option<TicketId>, StoreError> {
        if platform_ids.is_empty() {
            return Ok(None);
        }
        let platform_ids = platform_ids.to_vec();
        Ok(self
            .db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT ticket_id FROM messages WHERE channel = ?1 AND platform_message_id = ?2",
                )?;
                for id in &platform_ids {
                    let found = stmt
                        .query_row(params![channel.as_str(), id], |row| {
                            parsed(row, 0, TicketId::parse)
                        })
                        .optional()?;
                    if found.is_some() {
                        return Ok(found);
                    }
                }
                Ok(None)
            })
            .await?)
    }

    async fn resolve_contact(
        &self,
        identities: &[Identity],
        name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ResolvedContact, StoreError> {
        let wanted = distinct_identities(identities);
        let name = name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        Ok(self
            .db
            .write(move |conn| resolve_contact(conn, &wanted, name.as_deref(), now))
            .await?)
    }

    async fn append_message(
        &self,
        route: &Route,
        message: &Message,
        contact: &ContactId,
    ) -> Result<Appended, StoreError> {
        let (route, message, contact) = (route.clone(), message.clone(), contact.clone());
        Ok(self
            .db
            .write(move |conn| append(conn, &route, &message, &contact))
            .await?)
    }

    async fn revise_message(
        &self,
        channel: ChannelKind,
        platform_message_id: &str,
        revision: &Revision,
    ) -> Result<Option<(TicketId, MessageId)>, StoreError> {
        let (platform_message_id, revision) = (platform_message_id.to_string(), revision.clone());
        Ok(self
            .db
            .write(move |conn| revise(conn, channel, &platform_message_id, &revision))
            .await?)
    }

    async fn get_ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        let id = id.clone();
        Ok(self.db.call(move |conn| read_ticket(conn, &id)).await?)
    }

    async fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<Ticket>, StoreError> {
        let status = filter.status.map(TicketStatus::as_str);
        let channel = filter.channel.map(ChannelKind::as_str);
        let limit = filter.limit.clamp(1, MAX_LIST_LIMIT) as i64;
        let after = match &filter.after {
            Some(cursor) => Some((to_nanos(cursor.updated_at)?, cursor.id.as_str().to_string())),
            None => None,
        };
        let (after_at, after_id) = after.unzip();
        Ok(self
            .db
            .call(move |conn| {
                let sql = format!(
                    "SELECT {TICKET_COLUMNS} FROM tickets \
                     WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR channel = ?2) \
                     AND (?4 IS NULL OR updated_at < ?4 OR (updated_at = ?4 AND id > ?5)) \
                     ORDER BY updated_at DESC, id LIMIT ?3"
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map(
                    params![status, channel, limit, after_at, after_id],
                    ticket_from_row,
                )?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }

    async fn list_messages(&self, ticket: &TicketId) -> Result<Vec<Message>, StoreError> {
        self.first_messages(ticket, i64::MAX).await
    }

    async fn list_first_messages(
        &self,
        ticket: &TicketId,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.first_messages(ticket, i64::try_from(limit).unwrap_or(i64::MAX))
            .await
    }

    async fn get_message(
        &self,
        ticket: &TicketId,
        message: &MessageId,
    ) -> Result<Option<Message>, StoreError> {
        let (ticket, message) = (ticket.clone(), message.clone());
        let body = self
            .db
            .call(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT body FROM messages WHERE id = ?1 AND ticket_id = ?2")?
                    .query_row(params![message.as_str(), ticket.as_str()], |row| {
                        row.get::<_, String>(0)
                    })
                    .optional()?)
            })
            .await?;
        Ok(body
            .map(|body| serde_json::from_str(&body).map_err(DbError::from))
            .transpose()?)
    }

    async fn find_ticket_by_conversation(
        &self,
        key: &ConversationKey,
    ) -> Result<Option<TicketId>, StoreError> {
        let key = key.as_str().to_string();
        Ok(self
            .db
            .call(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT ticket_id FROM conversation_keys WHERE key = ?1")?
                    .query_row(params![key], |row| parsed(row, 0, TicketId::parse))
                    .optional()?)
            })
            .await?)
    }

    async fn find_contact_by_identity(
        &self,
        identity: &Identity,
    ) -> Result<Option<ContactId>, StoreError> {
        let identity = identity.as_str().to_string();
        Ok(self
            .db
            .call(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT contact_id FROM contact_identities WHERE identity = ?1",
                    )?
                    .query_row(params![identity], |row| parsed(row, 0, ContactId::parse))
                    .optional()?)
            })
            .await?)
    }

    async fn get_contact(&self, id: &ContactId) -> Result<Option<Contact>, StoreError> {
        let id = id.clone();
        Ok(self.db.call(move |conn| read_contact(conn, &id)).await?)
    }

    async fn set_status(
        &self,
        ticket: &TicketId,
        status: TicketStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Ticket>, StoreError> {
        let ticket = ticket.clone();
        Ok(self
            .db
            .write(move |conn| {
                let tx = write_tx(conn)?;
                let changed = tx.execute(
                    "UPDATE tickets SET status = ?1, updated_at = ?2 WHERE id = ?3",
                    params![status.as_str(), to_nanos(now)?, ticket.as_str()],
                )?;
                if changed == 0 {
                    return Ok(None);
                }
                let updated = read_ticket(&tx, &ticket)?;
                tx.commit()?;
                Ok(updated)
            })
            .await?)
    }

    async fn set_delivery(
        &self,
        ticket: &TicketId,
        message: &MessageId,
        expected: &Delivery,
        delivery: &Delivery,
    ) -> Result<bool, StoreError> {
        let (ticket, message) = (ticket.clone(), message.clone());
        let (expected, delivery) = (expected.clone(), delivery.clone());
        Ok(self
            .db
            .write(move |conn| set_delivery(conn, &ticket, &message, &expected, &delivery))
            .await?)
    }
}

const TICKET_COLUMNS: &str = "id, status, channel, subject, contact_id, conversation_key, \
                              created_at, updated_at, preview, message_count, related_tickets";

/// Reads a text column through a parse, reporting a failed parse as corrupt data.
fn parsed<T, E>(
    row: &Row<'_>,
    idx: usize,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(idx)?;
    parse(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

fn ticket_from_row(row: &Row<'_>) -> rusqlite::Result<Ticket> {
    Ok(Ticket {
        id: parsed(row, 0, TicketId::parse)?,
        status: parsed(row, 1, str::parse::<TicketStatus>)?,
        channel: parsed(row, 2, str::parse::<ChannelKind>)?,
        subject: row.get(3)?,
        contact_id: parsed(row, 4, ContactId::parse)?,
        conversation_key: parsed(row, 5, ConversationKey::parse)?,
        created_at: from_nanos(row.get(6)?),
        updated_at: from_nanos(row.get(7)?),
        preview: row.get(8)?,
        message_count: row.get(9)?,
        related_tickets: parsed(row, 10, |s| serde_json::from_str::<Vec<TicketId>>(s))?,
    })
}

fn read_ticket(conn: &Connection, id: &TicketId) -> Result<Option<Ticket>, DbError> {
    let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![id.as_str()], ticket_from_row)
        .optional()?)
}

fn ticket_exists(conn: &Connection, id: &TicketId) -> Result<bool, DbError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM tickets WHERE id = ?1")?
        .exists(params![id.as_str()])?)
}

fn read_contact(conn: &Connection, id: &ContactId) -> Result<Option<Contact>, DbError> {
    let Some((name, created_at)) = conn
        .prepare_cached("SELECT name, created_at FROM contacts WHERE id = ?1")?
        .query_row(params![id.as_str()], |row| {
            Ok((row.get::<_, Option<String>>(0)?, row.get::<_, i64>(1)?))
        })
        .optional()?
    else {
        return Ok(None);
    };
    let identities = conn
        .prepare_cached(
            "SELECT identity FROM contact_identities WHERE contact_id = ?1 ORDER BY seq",
        )?
        .query_map(params![id.as_str()], |row| Ok(Identity(row.get(0)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let emails = identities
        .iter()
        .filter_map(|i| i.as_str().strip_prefix("email:"))
        .filter_map(|address| EmailAddress::parse(address).ok())
        .collect();
    Ok(Some(Contact {
        id: id.clone(),
        name,
        emails,
        identities,
        created_at: from_nanos(created_at),
    }))
}

/// The oldest contact any of the identities leads to, else a new one; then the identities that
/// belong to no contact yet are given to it. Two existing contacts are never merged.
fn resolve_contact(
    conn: &mut Connection,
    identities: &[Identity],
    name: Option<&str>,
    now: DateTime<Utc>,
) -> Result<ResolvedContact, DbError> {
    let tx = write_tx(conn)?;
    let mut oldest: Option<(i64, i64, ContactId)> = None;
    {
        let mut stmt = tx.prepare_cached(
            "SELECT c.created_at, c.seq, c.id FROM contact_identities i \
             JOIN contacts c ON c.id = i.contact_id WHERE i.identity = ?1",
        )?;
        for identity in identities {
            let found = stmt
                .query_row(params![identity.as_str()], |row| {
                    Ok((row.get(0)?, row.get(1)?, parsed(row, 2, ContactId::parse)?))
                })
                .optional()?;
            if let Some(found) = found {
                if oldest
                    .as_ref()
                    .is_none_or(|o| (found.0, found.1) < (o.0, o.1))
                {
                    oldest = Some(found);
                }
            }
        }
    }
    let (contact, created) = match oldest {
        Some((_, _, id)) => {
            if let Some(name) = name {
                tx.execute(
                    "UPDATE contacts SET name = ?1 WHERE id = ?2 AND name IS NULL",
                    params![name, id.as_str()],
                )?;
            }
            (id, false)
        }
        None => {
            let id = ContactId::generate();
            tx.execute(
                "INSERT INTO contacts (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![id.as_str(), name, to_nanos(now)?],
            )?;
            debug!(contact_id = %id, "contact created");
            (id, true)
        }
    };
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO contact_identities (identity, contact_id) VALUES (?1, ?2) \
             ON CONFLICT (identity) DO NOTHING",
        )?;
        for identity in identities {
            stmt.execute(params![identity.as_str(), contact.as_str()])?;
        }
    }
    tx.commit()?;
    Ok(ResolvedContact {
        id: contact,
        created,
    })
}

/// The stored message with this platform id or Crossdesk id, as a duplicate.
fn stored_duplicate(tx: &Connection, message: &Message) -> Result<Option<Appended>, DbError> {
    let as_duplicate = |row: &Row<'_>| {
        Ok(Appended {
            ticket_id: parsed(row, 0, TicketId::parse)?,
            message_id: parsed(row, 1, MessageId::parse)?,
            created_ticket: false,
            duplicate: true,
        })
    };
    if let Some(platform_id) = &message.platform_message_id {
        let found = tx
            .prepare_cached(
                "SELECT ticket_id, id FROM messages WHERE channel = ?1 AND platform_message_id = ?2",
            )?
            .query_row(params![message.channel.as_str(), platform_id], as_duplicate)
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    // A retried append of the very same message (same Crossdesk id) is stored once too.
    Ok(tx
        .prepare_cached("SELECT ticket_id, id FROM messages WHERE id = ?1")?
        .query_row(params![message.id.as_str()], as_duplicate)
        .optional()?)
}

fn append(
    conn: &mut Connection,
    route: &Route,
    message: &Message,
    contact: &ContactId,
) -> Result<Appended, DbError> {
    let received_at = to_nanos(message.received_at)?;
    let sent_at = to_nanos(message.sent_at)?;
    let body = encode(message)?;
    let key = route.conversation_key.as_str();

    let tx = write_tx(conn)?;
    if let Some(duplicate) = stored_duplicate(&tx, message)? {
        return Ok(duplicate);
    }

    let claim_key = |tx: &Connection, ticket: &TicketId| -> Result<(), DbError> {
        tx.prepare_cached(
            "INSERT INTO conversation_keys (key, ticket_id) VALUES (?1, ?2) \
             ON CONFLICT (key) DO NOTHING",
        )?
        .execute(params![key, ticket.as_str()])?;
        Ok(())
    };
    let mapped = tx
        .prepare_cached("SELECT ticket_id FROM conversation_keys WHERE key = ?1")?
        .query_row(params![key], |row| parsed(row, 0, TicketId::parse))
        .optional()?;

    let (ticket_id, created_ticket) = match (&route.ticket, mapped) {
        (Some(ticket), _) => {
            if !ticket_exists(&tx, ticket)? {
                return Err(DbError::Rejected(format!(
                    "the message is routed to ticket {ticket}, which does not exist"
                )));
            }
            claim_key(&tx, ticket)?;
            (ticket.clone(), false)
        }
        (None, Some(ticket)) => (ticket, false),
        (None, None) => {
            let new = &route.new_ticket;
            if ticket_exists(&tx, &new.id)? {
                return Err(DbError::Conflict(format!(
                    "new ticket id {} is already taken",
                    new.id
                )));
            }
            tx.prepare_cached(
                "INSERT INTO tickets (id, status, channel, subject, contact_id, conversation_key, \
                 created_at, updated_at, preview, message_count, related_tickets) \
                 VALUES (?1, 'open', ?2, ?3, ?4, ?5, ?6, ?6, '', 0, ?7)",
            )?
            .execute(params![
                new.id.as_str(),
                message.channel.as_str(),
                new.subject,
                contact.as_str(),
                key,
                received_at,
                encode(&new.related_tickets)?,
            ])?;
            claim_key(&tx, &new.id)?;
            debug!(ticket_id = %new.id, "ticket created");
            (new.id.clone(), true)
        }
    };

    tx.prepare_cached(
        "INSERT INTO messages (id, ticket_id, channel, platform_message_id, sent_at, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        message.id.as_str(),
        ticket_id.as_str(),
        message.channel.as_str(),
        message.platform_message_id,
        sent_at,
        body,
    ])?;
    tx.prepare_cached(
        "UPDATE tickets SET \
           updated_at = MAX(updated_at, ?1), \
           preview = ?2, \
           message_count = message_count + 1, \
           status = CASE WHEN ?3 AND status IN ('pending', 'solved') THEN 'open' ELSE status END \
         WHERE id = ?4",
    )?
    .execute(params![
        received_at,
        first_line(&message.text, PREVIEW_CHARS),
        message.reopens_ticket(),
        ticket_id.as_str(),
    ])?;
    tx.commit()?;
    Ok(Appended {
        ticket_id,
        message_id: message.id.clone(),
        created_ticket,
        duplicate: false,
    })
}

/// Applies an edit or removal. A removal is final; an edit older than the last revision applied
/// is ignored (webhooks can arrive out of order). Either way the message is reported as found.
fn revise(
    conn: &mut Connection,
    channel: ChannelKind,
    platform_message_id: &str,
    revision: &Revision,
) -> Result<Option<(TicketId, MessageId)>, DbError> {
    let tx = write_tx(conn)?;
    let Some((seq, ticket_id, message_id, revised_at, body)) = tx
        .prepare_cached(
            "SELECT seq, ticket_id, id, revised_at, body FROM messages \
             WHERE channel = ?1 AND platform_message_id = ?2",
        )?
        .query_row(params![channel.as_str(), platform_message_id], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                parsed(row, 1, TicketId::parse)?,
                parsed(row, 2, MessageId::parse)?,
                row.get::<_, Option<i64>>(3)?,
                row.get::<_, String>(4)?,
            ))
        })
        .optional()?
    else {
        return Ok(None);
    };
    let mut message: Message = serde_json::from_str(&body)?;
    let changed_at = match revision {
        Revision::Edited { text, at } => {
            let at = to_nanos(*at)?;
            let stale = revised_at.is_some_and(|last| last > at);
            if message.event == MessageEvent::Removed || stale {
                None
            } else {
                message.text = text.clone();
                message.event = MessageEvent::Edited;
                Some(at)
            }
        }
        Revision::Removed { at } => {
            let at = to_nanos(*at)?;
            message.event = MessageEvent::Removed;
            Some(revised_at.map_or(at, |last| last.max(at)))
        }
    };
    if let Some(at) = changed_at {
        tx.prepare_cached("UPDATE messages SET body = ?1, revised_at = ?2 WHERE seq = ?3")?
            .execute(params![encode(&message)?, at, seq])?;
        tx.commit()?;
    }
    Ok(Some((ticket_id, message_id)))
}

/// Records a delivery. A reply the platform accepted takes the platform's id as its
/// `platform_message_id` (it is "absent on a reply not yet sent"), so the platform's echo of it
/// is recognized as a duplicate and answers to it thread into its ticket.
fn set_delivery(
    conn: &mut Connection,
    ticket: &TicketId,
    message_id: &MessageId,
    expected: &Delivery,
    delivery: &Delivery,
) -> Result<bool, DbError> {
    let tx = write_tx(conn)?;
    let Some((seq, body)) = tx
        .prepare_cached("SELECT seq, body FROM messages WHERE id = ?1 AND ticket_id = ?2")?
        .query_row(params![message_id.as_str(), ticket.as_str()], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .optional()?
    else {
        return Err(DbError::Rejected(format!(
            "message {message_id} is not stored in ticket {ticket}"
        )));
    };
    let mut message: Message = serde_json::from_str(&body)?;
    if message.delivery.as_ref() != Some(expected) {
        return Ok(false);
    }
    message.delivery = Some(delivery.clone());
    if let (None, Some(platform_id)) = (&message.platform_message_id, &delivery.platform_id) {
        let taken = tx
            .prepare_cached(
                "SELECT 1 FROM messages WHERE channel = ?1 AND platform_message_id = ?2",
            )?
            .exists(params![message.channel.as_str(), platform_id])?;
        if taken {
            warn!(
                ticket_id = %ticket, message_id = %message_id, platform_message_id = %platform_id,
                "the platform id of the sent reply is already stored on another message"
            );
        } else {
            message.platform_message_id = Some(platform_id.clone());
        }
    }
    tx.prepare_cached("UPDATE messages SET body = ?1, platform_message_id = ?2 WHERE seq = ?3")?
        .execute(params![encode(&message)?, message.platform_message_id, seq])?;
    tx.commit()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crossdesk_core::writer::{TicketWriter, WriteOutcome};
    use crossdesk_core::{NewTicket, Revision};
    use crossdesk_store_contract::{at, MessageBuilder as M};

    use super::*;

    async fn write(store: &SqliteStore, message: &Message) -> WriteOutcome {
        TicketWriter::new(Arc::new(store.clone()))
            .write(message)
            .await
            .expect("write")
    }

    fn ticket_of(outcome: &WriteOutcome) -> TicketId {
        match outcome {
            WriteOutcome::Stored { ticket_id, .. }
            | WriteOutcome::Duplicate { ticket_id, .. }
            | WriteOutcome::Revised { ticket_id, .. } => ticket_id.clone(),
            WriteOutcome::Ignored | WriteOutcome::OwnMail => panic!("not stored: {outcome:?}"),
        }
    }

    #[tokio::test]
    async fn data_survives_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crossdesk.db");
        let m = M::facebook_dm("u1", "m1").build();
        let t = {
            let store = SqliteStore::open(&path).unwrap();
            ticket_of(&write(&store, &m).await)
        };
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.list_messages(&t).await.unwrap(), vec![m.clone()]);
        assert!(matches!(
            write(&store, &m).await,
            WriteOutcome::Duplicate { .. }
        ));
    }

    #[tokio::test]
    async fn writers_on_two_connections_to_one_file_make_one_ticket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crossdesk.db");
        let stores = [
            SqliteStore::open(&path).unwrap(),
            SqliteStore::open(&path).unwrap(),
        ];
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = stores[i % 2].clone();
                // Each message is delivered twice, once through each connection.
                let m = M::chat("s1", "v1", &format!("c{}", i / 2))
                    .at(i as i64 / 2)
                    .build();
                tokio::spawn(async move { write(&store, &m).await })
            })
            .collect();
        let mut tickets = std::collections::HashSet::new();
        let mut stored = 0;
        for task in tasks {
            let outcome = task.await.unwrap();
            stored += usize::from(matches!(outcome, WriteOutcome::Stored { .. }));
            tickets.insert(ticket_of(&outcome));
        }
        assert_eq!(tickets.len(), 1);
        assert_eq!(stored, 8);
        let t = tickets.into_iter().next().unwrap();
        assert_eq!(stores[1].list_messages(&t).await.unwrap().len(), 8);
        assert_eq!(
            stores[0]
                .get_ticket(&t)
                .await
                .unwrap()
                .unwrap()
                .message_count,
            8
        );
    }

    #[tokio::test]
    async fn list_limit_is_clamped() {
        let store = SqliteStore::in_memory().unwrap();
        for i in 0..3 {
            write(
                &store,
                &M::facebook_dm(&format!("u{i}"), &format!("m{i}")).build(),
            )
            .await;
        }
        let list = |limit| {
            let store = store.clone();
            async move {
                store
                    .list_tickets(&TicketFilter {
                        limit,
                        ..TicketFilter::default()
                    })
                    .await
                    .unwrap()
                    .len()
            }
        };
        assert_eq!(list(0).await, 1);
        assert_eq!(list(usize::MAX).await, 3);
    }

    #[tokio::test]
    async fn an_edit_older_than_the_last_revision_is_ignored() {
        let store = SqliteStore::in_memory().unwrap();
        let comment = M::facebook_comment("p", "u1", "c1")
            .text("v0")
            .at(0)
            .build();
        write(&store, &comment).await;
        let revise = |text: &str, secs| {
            let store = store.clone();
            let revision = Revision::Edited {
                text: text.to_string(),
                at: at(secs),
            };
            async move {
                store
                    .revise_message(ChannelKind::Facebook, "c1", &revision)
                    .await
                    .unwrap()
                    .is_some()
            }
        };
        assert!(revise("v2", 20).await);
        assert!(
            revise("v1", 10).await,
            "a stale edit is still a known message"
        );
        let t = store
            .find_ticket_by_platform_ids(ChannelKind::Facebook, &["c1".into()])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.list_messages(&t).await.unwrap()[0].text, "v2");
    }

    #[tokio::test]
    async fn a_removed_message_stays_removed_when_a_late_edit_arrives() {
        let store = SqliteStore::in_memory().unwrap();
        let t = ticket_of(
            &write(
                &store,
                &M::facebook_comment("p", "u1", "c1").text("v0").build(),
            )
            .await,
        );
        let removed = Revision::Removed { at: at(10) };
        let edited = Revision::Edited {
            text: "v1".into(),
            at: at(20),
        };
        store
            .revise_message(ChannelKind::Facebook, "c1", &removed)
            .await
            .unwrap();
        store
            .revise_message(ChannelKind::Facebook, "c1", &edited)
            .await
            .unwrap();
        let m = &store.list_messages(&t).await.unwrap()[0];
        assert_eq!(m.event, MessageEvent::Removed);
        assert_eq!(m.text, "v0");
    }

    #[tokio::test]
    async fn a_taken_new_ticket_id_is_a_retryable_conflict() {
        let store = SqliteStore::in_memory().unwrap();
        let first = M::facebook_dm("u1", "m1").build();
        let t = ticket_of(&write(&store, &first).await);
        let other = M::facebook_dm("u2", "m2").build();
        let route = Route {
            ticket: None,
            conversation_key: other.conversation.key(other.channel).unwrap(),
            new_ticket: NewTicket {
                id: t,
                subject: "s".into(),
                related_tickets: Vec::new(),
            },
        };
        let err = store
            .append_message(&route, &other, &ContactId::generate())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn undecodable_stored_message_is_corrupt() {
        let store = SqliteStore::in_memory().unwrap();
        let t = ticket_of(&write(&store, &M::chat("s", "v", "c1").build()).await);
        store
            .db
            .write(|conn| Ok(conn.execute("UPDATE messages SET body = 'not json'", [])?))
            .await
            .unwrap();
        let err = store.list_messages(&t).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_timestamp_outside_the_storable_range_is_rejected() {
        let store = SqliteStore::in_memory().unwrap();
        let mut m = M::chat("s", "v", "c1").build();
        m.sent_at = DateTime::<Utc>::MAX_UTC;
        let err = store
            .append_message(
                &Route {
                    ticket: None,
                    conversation_key: m.conversation.key(m.channel).unwrap(),
                    new_ticket: NewTicket {
                        id: TicketId::generate(),
                        subject: "s".into(),
                        related_tickets: Vec::new(),
                    },
                },
                &m,
                &ContactId::generate(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Rejected(_)), "{err:?}");
    }

    #[test]
    fn a_database_with_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crossdesk.db");
        rusqlite::Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", crate::SCHEMA_VERSION + 1)
            .unwrap();
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_version_1_database_gains_related_tickets_and_keeps_its_tickets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crossdesk.db");
        {
            // The tickets table as version 1 made it, with one ticket.
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE tickets (id TEXT PRIMARY KEY, status TEXT NOT NULL, \
                 channel TEXT NOT NULL, subject TEXT NOT NULL, contact_id TEXT NOT NULL, \
                 conversation_key TEXT NOT NULL, created_at INTEGER NOT NULL, \
                 updated_at INTEGER NOT NULL, preview TEXT NOT NULL, \
                 message_count INTEGER NOT NULL); \
                 INSERT INTO tickets VALUES ('K3F9Q2XA', 'open', 'email', 'Old', \
                 'ct_0123456789abcdef0123456789abcdef', 'email:thread:a@b.c', 0, 0, '', 0); \
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let old = store
            .get_ticket(&TicketId::parse("K3F9Q2XA").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old.subject, "Old");
        assert!(old.related_tickets.is_empty());
        // Reopening the migrated file changes nothing.
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.list_tickets(&TicketFilter::default()).await.unwrap(),
            vec![old]
        );
    }

    #[test]
    fn a_missing_directory_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let err = SqliteStore::open(&dir.path().join("nope/crossdesk.db")).unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
}
