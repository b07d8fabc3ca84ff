//! The fault-injecting store against a real store (SQLite): a failure before a write leaves
//! nothing written, one after it leaves the write done, and a script strikes exactly the writes
//! it names.

use std::sync::Arc;

use chrono::Utc;
use crossdesk_core::faults::{FaultyTicketStore, StoreFaults, Strike};
use crossdesk_core::{ChannelKind, Identity, StoreError, TicketStore};
use crossdesk_embedded::SqliteStore;

fn visitor(i: usize) -> Identity {
    Identity::new(ChannelKind::Chat, &format!("visitor-{i}"))
}

#[tokio::test]
async fn a_scripted_failure_before_leaves_nothing_and_one_after_leaves_the_write() {
    let inner = Arc::new(SqliteStore::in_memory().unwrap());
    let store = FaultyTicketStore::scripted(inner.clone(), [Strike::Before, Strike::After]);
    for i in 0..3 {
        let result = store.resolve_contact(&[visitor(i)], None, Utc::now()).await;
        let stored = inner.find_contact_by_identity(&visitor(i)).await.unwrap();
        match i {
            0 => {
                assert!(matches!(result, Err(StoreError::Unavailable(_))));
                assert!(stored.is_none(), "nothing written before the failure");
            }
            1 => {
                assert!(matches!(result, Err(StoreError::Unavailable(_))));
                assert!(stored.is_some(), "written, then the failure");
            }
            _ => assert_eq!(result.unwrap().id, stored.unwrap(), "the script is over"),
        }
    }
    assert_eq!(store.injected(), 2);
    // Reads never fail and are not counted as writes.
    assert!(store
        .find_contact_by_identity(&visitor(0))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_share_fails_about_that_share_of_writes() {
    let inner = Arc::new(SqliteStore::in_memory().unwrap());
    let store = FaultyTicketStore::new(
        inner.clone(),
        StoreFaults {
            share: 0.25,
            seed: 11,
        },
    );
    let mut failed = 0;
    for i in 0..400 {
        if store
            .resolve_contact(&[visitor(i)], None, Utc::now())
            .await
            .is_err()
        {
            failed += 1;
        }
    }
    assert!((60..140).contains(&failed), "{failed} of 400");
    assert_eq!(store.injected(), failed);
}
