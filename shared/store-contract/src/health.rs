//! The contract every [`ChannelHealthStore`] adapter passes. Run it with
//! [`channel_health_contract_tests!`](crate::channel_health_contract_tests) and a factory of
//! [`Fixture`](crate::Fixture)s.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use crossdesk_core::health::{
    ChannelHealthStore, ChannelState, CheckResult, CheckStatus, Reauthorization,
};
use crossdesk_core::ChannelKind;

/// Expands to one `#[test]` per channel health contract test, each on a fresh store from
/// `$factory` (a closure returning a future of a [`Fixture`](crate::Fixture)).
#[macro_export]
macro_rules! channel_health_contract_tests {
    ($factory:expr) => {
        $crate::channel_health_contract_tests!(@each $factory;
            an_unknown_channel_has_an_empty_state,
            inbound_time_only_moves_forward,
            check_results_replace_the_same_check_only,
            an_older_check_result_does_not_replace_a_newer_one,
            reauthorization_is_marked_and_cleared_by_a_later_success,
            an_earlier_success_does_not_clear_a_later_mark,
            channels_are_kept_apart,
            timestamps_read_back_to_the_microsecond,
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::run($factory, $crate::health::$name);
            }
        )*
    };
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000 + secs, 0).expect("a valid time")
}

fn result(check: &str, status: CheckStatus, secs: i64) -> CheckResult {
    CheckResult {
        check: check.into(),
        status,
        reason: format!("{check} is {}", status.as_str()),
        checked_at: at(secs),
    }
}

fn mark(code: &str, secs: i64) -> Reauthorization {
    Reauthorization {
        code: code.into(),
        reason: format!("Meta said {code}"),
        at: at(secs),
    }
}

async fn state(store: &Arc<dyn ChannelHealthStore>, channel: ChannelKind) -> ChannelState {
    store.channel_state(channel).await.expect("channel_state")
}

/// A channel nothing was recorded for reads as the empty state.
pub async fn an_unknown_channel_has_an_empty_state(store: Arc<dyn ChannelHealthStore>) {
    assert_eq!(
        state(&store, ChannelKind::Email).await,
        ChannelState::default()
    );
    assert!(!store
        .clear_reauthorization(ChannelKind::Email, at(0))
        .await
        .expect("clear"));
}

/// The last inbound time keeps the latest event, whatever order the writes come in.
pub async fn inbound_time_only_moves_forward(store: Arc<dyn ChannelHealthStore>) {
    let ch = ChannelKind::Facebook;
    store.record_inbound(ch, at(100)).await.expect("record");
    assert_eq!(state(&store, ch).await.last_inbound_at, Some(at(100)));
    store.record_inbound(ch, at(50)).await.expect("record");
    assert_eq!(state(&store, ch).await.last_inbound_at, Some(at(100)));
    store.record_inbound(ch, at(160)).await.expect("record");
    assert_eq!(state(&store, ch).await.last_inbound_at, Some(at(160)));
}

/// A check's new result replaces its earlier one; other checks stay; checks read sorted by name.
pub async fn check_results_replace_the_same_check_only(store: Arc<dyn ChannelHealthStore>) {
    let ch = ChannelKind::Facebook;
    store
        .record_check(ch, &result("webhook_subscription", CheckStatus::Ok, 0))
        .await
        .expect("record");
    store
        .record_check(ch, &result("page_token", CheckStatus::Failing, 1))
        .await
        .expect("record");
    store
        .record_check(ch, &result("page_token", CheckStatus::Ok, 2))
        .await
        .expect("record");
    assert_eq!(
        state(&store, ch).await.checks,
        [
            result("page_token", CheckStatus::Ok, 2),
            result("webhook_subscription", CheckStatus::Ok, 0),
        ]
    );
}

/// A result that arrives late (an older check run) does not hide the newer one.
pub async fn an_older_check_result_does_not_replace_a_newer_one(
    store: Arc<dyn ChannelHealthStore>,
) {
    let ch = ChannelKind::Twitter;
    store
        .record_check(ch, &result("credentials", CheckStatus::Failing, 20))
        .await
        .expect("record");
    store
        .record_check(ch, &result("credentials", CheckStatus::Ok, 10))
        .await
        .expect("record");
    assert_eq!(
        state(&store, ch).await.checks,
        [result("credentials", CheckStatus::Failing, 20)]
    );
}

/// A rejected token marks the channel; a success after it clears the mark.
pub async fn reauthorization_is_marked_and_cleared_by_a_later_success(
    store: Arc<dyn ChannelHealthStore>,
) {
    let ch = ChannelKind::Facebook;
    store
        .mark_reauthorization(ch, &mark("graph_190", 10))
        .await
        .expect("mark");
    store.record_inbound(ch, at(12)).await.expect("record");
    let s = state(&store, ch).await;
    assert_eq!(s.reauthorization, Some(mark("graph_190", 10)));
    assert_eq!(s.last_inbound_at, Some(at(12)), "both live side by side");
    // A newer rejection replaces the older one.
    store
        .mark_reauthorization(ch, &mark("graph_190_463", 20))
        .await
        .expect("mark");
    store
        .mark_reauthorization(ch, &mark("graph_102", 15))
        .await
        .expect("mark");
    assert_eq!(
        state(&store, ch).await.reauthorization,
        Some(mark("graph_190_463", 20))
    );
    assert!(store
        .clear_reauthorization(ch, at(30))
        .await
        .expect("clear"));
    let s = state(&store, ch).await;
    assert_eq!(s.reauthorization, None);
    assert_eq!(s.last_inbound_at, Some(at(12)));
    assert!(
        !store
            .clear_reauthorization(ch, at(31))
            .await
            .expect("clear"),
        "nothing left to clear"
    );
}

/// A send that succeeded before the token was rejected (answered late) leaves the mark.
pub async fn an_earlier_success_does_not_clear_a_later_mark(store: Arc<dyn ChannelHealthStore>) {
    let ch = ChannelKind::Twitter;
    store
        .mark_reauthorization(ch, &mark("x_401", 50))
        .await
        .expect("mark");
    assert!(!store
        .clear_reauthorization(ch, at(40))
        .await
        .expect("clear"));
    assert_eq!(
        state(&store, ch).await.reauthorization,
        Some(mark("x_401", 50))
    );
    assert!(store
        .clear_reauthorization(ch, at(50))
        .await
        .expect("clear"));
}

/// What is recorded for one channel is not seen on another.
pub async fn channels_are_kept_apart(store: Arc<dyn ChannelHealthStore>) {
    store
        .mark_reauthorization(ChannelKind::Facebook, &mark("graph_190", 1))
        .await
        .expect("mark");
    store
        .record_check(
            ChannelKind::Facebook,
            &result("page_token", CheckStatus::Failing, 1),
        )
        .await
        .expect("record");
    store
        .record_inbound(ChannelKind::Facebook, at(1))
        .await
        .expect("record");
    assert_eq!(
        state(&store, ChannelKind::Instagram).await,
        ChannelState::default()
    );
    assert!(!store
        .clear_reauthorization(ChannelKind::Instagram, at(5))
        .await
        .expect("clear"));
    assert!(state(&store, ChannelKind::Facebook)
        .await
        .reauthorization
        .is_some());
}

/// Times read back as written, to the microsecond (both stores keep at least that).
pub async fn timestamps_read_back_to_the_microsecond(store: Arc<dyn ChannelHealthStore>) {
    let precise = at(0) + TimeDelta::microseconds(123_456);
    store
        .record_inbound(ChannelKind::Chat, precise)
        .await
        .expect("record");
    let mut check = result("silence", CheckStatus::Warning, 0);
    check.checked_at = precise;
    store
        .record_check(ChannelKind::Chat, &check)
        .await
        .expect("record");
    let s = state(&store, ChannelKind::Chat).await;
    assert_eq!(s.last_inbound_at, Some(precise));
    assert_eq!(s.checks, [check]);
}
