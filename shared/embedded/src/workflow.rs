//! The working state of tickets and contacts in the local stack: [`WorkflowStore`] on
//! [`SqliteStore`] (tables `ticket_workflows`, `contact_links`, `link_suggestions`,
//! `agent_preferences`, `notification_windows` and `cursors`).
//!
//! A workflow's `version` makes every save a compare-and-set in one statement; its
//! `first_response_due` column is set only while the ticket awaits its first response, so the
//! partial index on it holds exactly the tickets an SLA check looks at.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use crossdesk_core::workflow::{
    AgentPreferences, ContactLinks, LinkSuggestion, MergeOutcome, TicketWorkflow, Versioned,
    WorkflowQuery, WorkflowStore,
};
use crossdesk_core::{ContactId, Identity, StoreError, TicketId, MAX_LIST_LIMIT};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::db::{encode, from_nanos, to_nanos, write_tx, DbError};
use crate::store::SqliteStore;

/// How long a claimed notification window is remembered.
const WINDOW_MEMORY: TimeDelta = TimeDelta::days(1);

fn contact(id: String) -> Result<ContactId, DbError> {
    ContactId::parse(&id).map_err(|e| DbError::Corrupt(format!("stored contact id {id}: {e}")))
}

fn merged_into(conn: &Connection, source: &str) -> Result<Option<String>, DbError> {
    Ok(conn
        .prepare_cached("SELECT target FROM contact_links WHERE source = ?1")?
        .query_row(params![source], |row| row.get(0))
        .optional()?)
}

fn has_merged(conn: &Connection, target: &str) -> Result<bool, DbError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM contact_links WHERE target = ?1")?
        .exists(params![target])?)
}

#[async_trait]
impl WorkflowStore for SqliteStore {
    async fn workflow(
        &self,
        ticket: &TicketId,
    ) -> Result<Option<Versioned<TicketWorkflow>>, StoreError> {
        let ticket = ticket.to_string();
        Ok(self
            .database()
            .call(move |conn| {
                let row: Option<(String, i64)> = conn
                    .prepare_cached(
                        "SELECT body, version FROM ticket_workflows WHERE ticket_id = ?1",
                    )?
                    .query_row(params![ticket], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?;
                match row {
                    Some((body, version)) => Ok(Some(Versioned {
                        value: serde_json::from_str(&body)?,
                        version: u64::try_from(version).map_err(|_| {
                            DbError::Corrupt(format!("workflow {ticket}: version {version}"))
                        })?,
                    })),
                    None => Ok(None),
                }
            })
            .await?)
    }

    async fn save_workflow(
        &self,
        workflow: &TicketWorkflow,
        expected: Option<u64>,
    ) -> Result<bool, StoreError> {
        let ticket = workflow.ticket_id.to_string();
        let contact = workflow.contact_id.to_string();
        let updated_at = to_nanos(workflow.updated_at)?;
        let due = workflow
            .sla
            .awaiting_first_response()
            .map(to_nanos)
            .transpose()?;
        let body = encode(workflow)?;
        let expected = expected
            .map(|v| {
                i64::try_from(v)
                    .ok()
                    .filter(|v| *v < i64::MAX)
                    .ok_or_else(|| StoreError::Rejected(format!("version {v} is out of range")))
            })
            .transpose()?;
        Ok(self
            .database()
            .write(move |conn| {
                let written = match expected {
                    None => conn
                        .prepare_cached(
                            "INSERT INTO ticket_workflows \
                             (ticket_id, contact_id, version, updated_at, first_response_due, body) \
                             VALUES (?1, ?2, 1, ?3, ?4, ?5) ON CONFLICT (ticket_id) DO NOTHING",
                        )?
                        .execute(params![ticket, contact, updated_at, due, body])?,
                    Some(version) => conn
                        .prepare_cached(
                            "UPDATE ticket_workflows SET contact_id = ?2, version = ?6 + 1, \
                             updated_at = ?3, first_response_due = ?4, body = ?5 \
                             WHERE ticket_id = ?1 AND version = ?6",
                        )?
                        .execute(params![ticket, contact, updated_at, due, body, version])?,
                };
                Ok(written == 1)
            })
            .await?)
    }

    async fn list_workflows(
        &self,
        query: &WorkflowQuery,
    ) -> Result<Vec<TicketWorkflow>, StoreError> {
        let limit = query.limit.clamp(1, MAX_LIST_LIMIT) as i64;
        let mut conditions = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(before) = query.first_response_due_before {
            values.push(Value::Integer(to_nanos(before)?));
            conditions.push(format!(
                "first_response_due IS NOT NULL AND first_response_due <= ?{}",
                values.len()
            ));
        }
        if !query.contacts.is_empty() {
            let mut marks = Vec::with_capacity(query.contacts.len());
            for contact in &query.contacts {
                values.push(Value::Text(contact.to_string()));
                marks.push(format!("?{}", values.len()));
            }
            conditions.push(format!("contact_id IN ({})", marks.join(", ")));
        }
        values.push(Value::Integer(limit));
        let order = if query.first_response_due_before.is_some() {
            "first_response_due, ticket_id"
        } else {
            "updated_at DESC, ticket_id"
        };
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT body FROM ticket_workflows {filter} ORDER BY {order} LIMIT ?{}",
            values.len()
        );
        Ok(self
            .database()
            .call(move |conn| {
                let mut stmt = conn.prepare(&sql)?;
                let bodies = stmt
                    .query_map(params_from_iter(values), |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut out = Vec::with_capacity(bodies.len());
                for body in bodies {
                    out.push(serde_json::from_str(&body)?);
                }
                Ok(out)
            })
            .await?)
    }

    async fn contact_links(&self, contact_id: &ContactId) -> Result<ContactLinks, StoreError> {
        let id = contact_id.to_string();
        Ok(self
            .database()
            .call(move |conn| {
                let mut links = ContactLinks {
                    merged_into: merged_into(conn, &id)?.map(contact).transpose()?,
                    ..ContactLinks::default()
                };
                let merged = conn
                    .prepare_cached(
                        "SELECT source FROM contact_links WHERE target = ?1 ORDER BY source",
                    )?
                    .query_map(params![id], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                for source in merged {
                    links.merged.push(contact(source)?);
                }
                let suggestions = conn
                    .prepare_cached(
                        "SELECT other_id, identity, at FROM link_suggestions \
                         WHERE contact_id = ?1 ORDER BY at, other_id",
                    )?
                    .query_map(params![id], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                for (other, identity, at) in suggestions {
                    links.suggestions.push(LinkSuggestion {
                        contact_id: contact(other)?,
                        identity: Identity(identity),
                        at: from_nanos(at),
                    });
                }
                Ok(links)
            })
            .await?)
    }

    async fn merge_contacts(
        &self,
        source: &ContactId,
        target: &ContactId,
        at: DateTime<Utc>,
    ) -> Result<MergeOutcome, StoreError> {
        if source == target {
            return Ok(MergeOutcome::Refused);
        }
        let (source, target) = (source.to_string(), target.to_string());
        let at = to_nanos(at)?;
        Ok(self
            .database()
            .write(move |conn| {
                let tx = write_tx(conn)?;
                match merged_into(&tx, &source)? {
                    Some(current) if current == target => return Ok(MergeOutcome::AlreadyMerged),
                    Some(_) => return Ok(MergeOutcome::MergedElsewhere),
                    None => {}
                }
                if merged_into(&tx, &target)?.is_some() || has_merged(&tx, &source)? {
                    return Ok(MergeOutcome::Refused);
                }
                tx.execute(
                    "INSERT INTO contact_links (source, target, at) VALUES (?1, ?2, ?3)",
                    params![source, target, at],
                )?;
                tx.commit()?;
                Ok(MergeOutcome::Merged)
            })
            .await?)
    }

    async fn unmerge_contact(&self, source: &ContactId) -> Result<bool, StoreError> {
        let source = source.to_string();
        Ok(self
            .database()
            .write(move |conn| {
                let deleted = conn
                    .prepare_cached("DELETE FROM contact_links WHERE source = ?1")?
                    .execute(params![source])?;
                Ok(deleted > 0)
            })
            .await?)
    }

    async fn suggest_link(
        &self,
        contact_id: &ContactId,
        suggestion: &LinkSuggestion,
    ) -> Result<(), StoreError> {
        if *contact_id == suggestion.contact_id {
            return Ok(());
        }
        let (one, other) = (contact_id.to_string(), suggestion.contact_id.to_string());
        let identity = suggestion.identity.as_str().to_string();
        let at = to_nanos(suggestion.at)?;
        Ok(self
            .database()
            .write(move |conn| {
                let tx = write_tx(conn)?;
                {
                    let mut insert = tx.prepare_cached(
                        "INSERT INTO link_suggestions (contact_id, other_id, identity, at) \
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    )?;
                    insert.execute(params![one, other, identity, at])?;
                    insert.execute(params![other, one, identity, at])?;
                }
                tx.commit()?;
                Ok(())
            })
            .await?)
    }

    async fn agent_preferences(
        &self,
        agent_id: &str,
    ) -> Result<Option<AgentPreferences>, StoreError> {
        let agent = agent_id.to_string();
        Ok(self
            .database()
            .call(move |conn| {
                let body: Option<String> = conn
                    .prepare_cached("SELECT body FROM agent_preferences WHERE agent_id = ?1")?
                    .query_row(params![agent], |row| row.get(0))
                    .optional()?;
                Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
            })
            .await?)
    }

    async fn save_agent_preferences(&self, prefs: &AgentPreferences) -> Result<(), StoreError> {
        let agent = prefs.agent_id.clone();
        let body = encode(prefs)?;
        Ok(self
            .database()
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO agent_preferences (agent_id, body) VALUES (?1, ?2) \
                     ON CONFLICT (agent_id) DO UPDATE SET body = excluded.body",
                )?
                .execute(params![agent, body])?;
                Ok(())
            })
            .await?)
    }

    async fn list_agent_preferences(&self) -> Result<Vec<AgentPreferences>, StoreError> {
        Ok(self
            .database()
            .call(move |conn| {
                let bodies = conn
                    .prepare_cached("SELECT body FROM agent_preferences ORDER BY agent_id")?
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut out = Vec::with_capacity(bodies.len());
                for body in bodies {
                    out.push(serde_json::from_str(&body)?);
                }
                Ok(out)
            })
            .await?)
    }

    async fn claim_window(&self, window: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let window = window.to_string();
        let forget_before = to_nanos(at - WINDOW_MEMORY)?;
        let at = to_nanos(at)?;
        Ok(self
            .database()
            .write(move |conn| {
                let tx = write_tx(conn)?;
                tx.prepare_cached("DELETE FROM notification_windows WHERE at < ?1")?
                    .execute(params![forget_before])?;
                let claimed = tx
                    .prepare_cached(
                        "INSERT INTO notification_windows (window_key, at) VALUES (?1, ?2) \
                         ON CONFLICT (window_key) DO NOTHING",
                    )?
                    .execute(params![window, at])?;
                tx.commit()?;
                Ok(claimed == 1)
            })
            .await?)
    }

    async fn cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        let name = name.to_string();
        Ok(self
            .database()
            .call(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT value FROM cursors WHERE name = ?1")?
                    .query_row(params![name], |row| row.get(0))
                    .optional()?)
            })
            .await?)
    }

    async fn save_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let (name, value) = (name.to_string(), value.to_string());
        Ok(self
            .database()
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO cursors (name, value) VALUES (?1, ?2) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![name, value])?;
                Ok(())
            })
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use crossdesk_core::ChannelKind;

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000 + secs, 0).unwrap()
    }

    #[tokio::test]
    async fn only_tickets_awaiting_their_first_response_carry_a_due_time() {
        let store = SqliteStore::in_memory().unwrap();
        let mut w = TicketWorkflow::new(
            TicketId::generate(),
            ContactId::generate(),
            ChannelKind::Chat,
            at(0),
        );
        w.sla.first_response_due = Some(at(60));
        assert!(store.save_workflow(&w, None).await.unwrap());
        w.sla.first_response_at = Some(at(30));
        assert!(store.save_workflow(&w, Some(1)).await.unwrap());
        let ticket = w.ticket_id.to_string();
        let due: Option<i64> = store
            .database()
            .call(move |conn| {
                Ok(conn.query_row(
                    "SELECT first_response_due FROM ticket_workflows WHERE ticket_id = ?1",
                    params![ticket],
                    |row| row.get(0),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(due, None);
    }

    #[tokio::test]
    async fn claims_older_than_a_day_are_forgotten() {
        let store = SqliteStore::in_memory().unwrap();
        assert!(store.claim_window("w1", at(0)).await.unwrap());
        assert!(!store.claim_window("w1", at(10)).await.unwrap());
        assert!(store.claim_window("w2", at(86_401)).await.unwrap());
        let count: i64 = store
            .database()
            .call(|conn| {
                Ok(
                    conn.query_row("SELECT count(*) FROM notification_windows", [], |row| {
                        row.get(0)
                    })?,
                )
            })
            .await
            .unwrap();
        assert_eq!(count, 1, "w1 was pruned");
    }
}
