//! The contract every [`EventLedger`] adapter passes. Run it with
//! [`event_ledger_contract_tests!`](crate::event_ledger_contract_tests) and a factory of
//! [`Fixture`](crate::Fixture)s.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use crossdesk_core::events::{
    EventId, EventLedger, EventType, FailedEndpoint, FailedEvent, OutgoingEvent,
};

/// Expands to one `#[test]` per event ledger contract test, each on a fresh ledger from
/// `$factory` (a closure returning a future of a [`Fixture`](crate::Fixture)).
#[macro_export]
macro_rules! event_ledger_contract_tests {
    ($factory:expr) => {
        $crate::event_ledger_contract_tests!(@each $factory;
            deliveries_are_recorded_per_event_and_endpoint,
            concurrent_records_of_one_delivery_win_once,
            failed_events_read_back_exactly,
            failed_events_are_listed_most_recent_first,
            failing_again_replaces_the_record,
            cleared_failed_events_are_gone,
            clearing_an_older_failure_keeps_a_newer_one,
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::run($factory, $crate::events::$name);
            }
        )*
    };
}

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

fn event(n: u32) -> OutgoingEvent {
    OutgoingEvent {
        id: EventId::derive(EventType::MessageCreated, &[&format!("msg_{n}")]),
        kind: EventType::MessageCreated,
        created_at: t(i64::from(n)),
        data: serde_json::json!({"ticket_id": "K3F9Q2XA", "message": {"text": format!("hello {n}")}}),
    }
}

fn failed(n: u32, at: DateTime<Utc>) -> FailedEvent {
    let event = event(n);
    FailedEvent {
        endpoints: vec![
            FailedEndpoint {
                endpoint: "https://a.example.com/hook".into(),
                delivery_id: format!("dlv_{n:032x}"),
                status: Some(410),
                reason: "the endpoint answered 410".into(),
            },
            FailedEndpoint {
                endpoint: "https://b.example.com/hook".into(),
                delivery_id: format!("dlv_{:032x}", n + 1000),
                status: None,
                reason: "gave up after 12 attempts: the endpoint did not answer in time".into(),
            },
        ],
        event,
        attempts: 12,
        failed_at: at,
    }
}

/// Delivery is recorded once per (event, endpoint); other pairs stay undelivered.
pub async fn deliveries_are_recorded_per_event_and_endpoint(ledger: Arc<dyn EventLedger>) {
    let (a, b) = (event(1).id, event(2).id);
    assert!(!ledger.is_delivered(&a, "endpoint-1").await.unwrap());
    assert!(ledger
        .record_delivered(&a, "endpoint-1", t(0))
        .await
        .unwrap());
    assert!(
        !ledger
            .record_delivered(&a, "endpoint-1", t(5))
            .await
            .unwrap(),
        "recorded before"
    );
    assert!(ledger.is_delivered(&a, "endpoint-1").await.unwrap());
    assert!(!ledger.is_delivered(&a, "endpoint-2").await.unwrap());
    assert!(!ledger.is_delivered(&b, "endpoint-1").await.unwrap());
}

/// Eight senders recording one delivery at once: exactly one records it.
pub async fn concurrent_records_of_one_delivery_win_once(ledger: Arc<dyn EventLedger>) {
    let id = event(3).id;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let ledger = Arc::clone(&ledger);
            let id = id.clone();
            tokio::spawn(async move {
                ledger
                    .record_delivered(&id, "endpoint-1", t(i))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        if task.await.unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
}

/// A failed event reads back exactly, alone and in the list.
pub async fn failed_events_read_back_exactly(ledger: Arc<dyn EventLedger>) {
    let kept = failed(1, t(10));
    assert_eq!(ledger.failed_event(&kept.event.id).await.unwrap(), None);
    ledger.record_failed(&kept).await.unwrap();
    assert_eq!(
        ledger.failed_event(&kept.event.id).await.unwrap(),
        Some(kept.clone())
    );
    assert_eq!(ledger.failed_events(10).await.unwrap(), vec![kept]);
}

/// The list is newest failure first and honours the limit.
pub async fn failed_events_are_listed_most_recent_first(ledger: Arc<dyn EventLedger>) {
    for (n, at) in [(1, 10), (2, 30), (3, 20)] {
        ledger.record_failed(&failed(n, t(at))).await.unwrap();
    }
    let listed: Vec<EventId> = ledger
        .failed_events(10)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.event.id)
        .collect();
    assert_eq!(listed, vec![event(2).id, event(3).id, event(1).id]);
    assert_eq!(ledger.failed_events(2).await.unwrap().len(), 2);
}

/// An event that fails again (after a replay) has one record, the latest.
pub async fn failing_again_replaces_the_record(ledger: Arc<dyn EventLedger>) {
    ledger.record_failed(&failed(1, t(10))).await.unwrap();
    ledger.record_failed(&failed(2, t(20))).await.unwrap();
    let mut again = failed(1, t(30));
    again.endpoints.truncate(1);
    again.attempts = 1;
    ledger.record_failed(&again).await.unwrap();
    let listed = ledger.failed_events(10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], again);
    assert_eq!(listed[1].event.id, event(2).id);
}

/// A cleared event is neither read nor listed; clearing twice says so.
pub async fn cleared_failed_events_are_gone(ledger: Arc<dyn EventLedger>) {
    let first = failed(1, t(10));
    ledger.record_failed(&first).await.unwrap();
    ledger.record_failed(&failed(2, t(20))).await.unwrap();
    assert!(ledger.clear_failed(&first).await.unwrap());
    assert!(!ledger.clear_failed(&first).await.unwrap());
    assert_eq!(ledger.failed_event(&event(1).id).await.unwrap(), None);
    let listed = ledger.failed_events(10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].event.id, event(2).id);
}

/// Clearing the failure a replay read does not clear a newer failure of the same event (the
/// replayed event failed again before the replay cleared it).
pub async fn clearing_an_older_failure_keeps_a_newer_one(ledger: Arc<dyn EventLedger>) {
    let older = failed(1, t(10));
    ledger.record_failed(&older).await.unwrap();
    let newer = failed(1, t(40));
    ledger.record_failed(&newer).await.unwrap();
    assert!(!ledger.clear_failed(&older).await.unwrap());
    assert_eq!(
        ledger.failed_event(&event(1).id).await.unwrap(),
        Some(newer.clone())
    );
    assert!(ledger.clear_failed(&newer).await.unwrap());
}
