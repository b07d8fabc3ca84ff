//! The channel health state of the local stack: [`ChannelHealthStore`] on [`SqliteStore`]
//! (tables `channel_state` and `channel_checks`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crossdesk_core::health::{
    ChannelHealthStore, ChannelState, CheckResult, CheckStatus, Reauthorization,
};
use crossdesk_core::{ChannelKind, StoreError};
use rusqlite::{params, OptionalExtension};

use crate::db::{from_nanos, to_nanos, write_tx, DbError};
use crate::store::SqliteStore;

#[async_trait]
impl ChannelHealthStore for SqliteStore {
    async fn channel_state(&self, channel: ChannelKind) -> Result<ChannelState, StoreError> {
        let name = channel.as_str();
        Ok(self
            .database()
            .call(move |conn| {
                let row = conn
                    .query_row(
                        "SELECT last_inbound_at, reauth_code, reauth_reason, reauth_at \
                         FROM channel_state WHERE channel = ?1",
                        params![name],
                        |row| {
                            Ok((
                                row.get::<_, Option<i64>>(0)?,
                                row.get::<_, Option<String>>(1)?,
                                row.get::<_, Option<String>>(2)?,
                                row.get::<_, Option<i64>>(3)?,
                            ))
                        },
                    )
                    .optional()?;
                let mut state = ChannelState::default();
                if let Some((inbound, code, reason, at)) = row {
                    state.last_inbound_at = inbound.map(from_nanos);
                    if let (Some(code), Some(at)) = (code, at) {
                        state.reauthorization = Some(Reauthorization {
                            code,
                            reason: reason.unwrap_or_default(),
                            at: from_nanos(at),
                        });
                    }
                }
                let mut statement = conn.prepare(
                    "SELECT check_name, status, reason, checked_at FROM channel_checks \
                     WHERE channel = ?1 ORDER BY check_name",
                )?;
                let rows = statement.query_map(params![name], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })?;
                for row in rows {
                    let (check, status, reason, checked_at) = row?;
                    let status = CheckStatus::parse(&status).ok_or_else(|| {
                        DbError::Corrupt(format!("check {check} has the unknown status {status}"))
                    })?;
                    state.checks.push(CheckResult {
                        check,
                        status,
                        reason,
                        checked_at: from_nanos(checked_at),
                    });
                }
                Ok(state)
            })
            .await?)
    }

    async fn record_inbound(
        &self,
        channel: ChannelKind,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let at = to_nanos(at)?;
        Ok(self
            .database()
            .write(move |conn| {
                let tx = write_tx(conn)?;
                tx.execute(
                    "INSERT INTO channel_state (channel, last_inbound_at) VALUES (?1, ?2) \
                     ON CONFLICT (channel) DO UPDATE SET last_inbound_at = excluded.last_inbound_at \
                     WHERE last_inbound_at IS NULL OR last_inbound_at < excluded.last_inbound_at",
                    params![channel.as_str(), at],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await?)
    }

    async fn record_check(
        &self,
        channel: ChannelKind,
        result: &CheckResult,
    ) -> Result<(), StoreError> {
        let checked_at = to_nanos(result.checked_at)?;
        let result = result.clone();
        Ok(self
            .database()
            .write(move |conn| {
                let tx = write_tx(conn)?;
                tx.execute(
                    "INSERT INTO channel_checks (channel, check_name, status, reason, checked_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (channel, check_name) DO UPDATE SET status = excluded.status, \
                     reason = excluded.reason, checked_at = excluded.checked_at \
                     WHERE checked_at <= excluded.checked_at",
                    params![
                        channel.as_str(),
                        result.check,
                        result.status.as_str(),
                        result.reason,
                        checked_at
                    ],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await?)
    }

    async fn mark_reauthorization(
        &self,
        channel: ChannelKind,
        mark: &Reauthorization,
    ) -> Result<(), StoreError> {
        let at = to_nanos(mark.at)?;
        let mark = mark.clone();
        Ok(self
            .database()
            .write(move |conn| {
                let tx = write_tx(conn)?;
                tx.execute(
                    "INSERT INTO channel_state (channel, reauth_code, reauth_reason, reauth_at) \
                     VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (channel) DO UPDATE SET reauth_code = excluded.reauth_code, \
                     reauth_reason = excluded.reauth_reason, reauth_at = excluded.reauth_at \
                     WHERE reauth_at IS NULL OR reauth_at <= excluded.reauth_at",
                    params![channel.as_str(), mark.code, mark.reason, at],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await?)
    }

    async fn clear_reauthorization(
        &self,
        channel: ChannelKind,
        succeeded_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let at = to_nanos(succeeded_at)?;
        Ok(self
            .database()
            .write(move |conn| {
                let tx = write_tx(conn)?;
                let cleared = tx.execute(
                    "UPDATE channel_state SET reauth_code = NULL, reauth_reason = NULL, \
                     reauth_at = NULL WHERE channel = ?1 AND reauth_at IS NOT NULL \
                     AND reauth_at <= ?2",
                    params![channel.as_str(), at],
                )?;
                tx.commit()?;
                Ok(cleared > 0)
            })
            .await?)
    }
}
