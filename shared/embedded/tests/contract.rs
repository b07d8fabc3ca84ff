//! The `TicketStore` contract, run against `SqliteStore` in memory and in a file.

use std::sync::Arc;

use crossdesk_core::TicketStore;
use crossdesk_embedded::SqliteStore;

mod in_memory {
    use super::*;

    crossdesk_store_contract::store_contract_tests!(|| async {
        Arc::new(SqliteStore::in_memory().expect("in-memory store")) as Arc<dyn TicketStore>
    });
}

mod in_a_file {
    use super::*;

    crossdesk_store_contract::store_contract_tests!(|| async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("crossdesk.db")).expect("file store");
        (Arc::new(store) as Arc<dyn TicketStore>, dir)
    });
}

mod channel_health {
    use std::sync::Arc;

    use crossdesk_core::health::ChannelHealthStore;
    use crossdesk_embedded::SqliteStore;

    crossdesk_store_contract::channel_health_contract_tests!(|| async {
        Arc::new(SqliteStore::in_memory().expect("in-memory store")) as Arc<dyn ChannelHealthStore>
    });
}

mod event_ledger {
    use std::sync::Arc;

    use crossdesk_core::events::EventLedger;
    use crossdesk_embedded::{Database, SqliteEventLedger};

    crossdesk_store_contract::event_ledger_contract_tests!(|| async {
        Arc::new(SqliteEventLedger::new(
            Database::in_memory().expect("in-memory database"),
        )) as Arc<dyn EventLedger>
    });
}

mod workflow {
    use std::sync::Arc;

    use crossdesk_core::workflow::WorkflowStore;
    use crossdesk_embedded::SqliteStore;

    crossdesk_store_contract::workflow_contract_tests!(|| async {
        Arc::new(SqliteStore::in_memory().expect("in-memory store")) as Arc<dyn WorkflowStore>
    });

    mod in_a_file {
        use super::*;

        crossdesk_store_contract::workflow_contract_tests!(|| async {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = SqliteStore::open(&dir.path().join("crossdesk.db")).expect("file store");
            (Arc::new(store) as Arc<dyn WorkflowStore>, dir)
        });
    }
}

/// The SLA watch over the store, with an injected clock.
mod sla_watch {
    use std::sync::Arc;

    use crossdesk_embedded::SqliteStore;
    use crossdesk_store_contract::sla::sla_watch_raises_each_breach_once;

    #[test]
    fn raises_each_breach_once() {
        crossdesk_store_contract::run(
            || async { Arc::new(SqliteStore::in_memory().expect("in-memory store")) },
            sla_watch_raises_each_breach_once,
        );
    }

    #[test]
    fn raises_each_breach_once_in_a_file() {
        crossdesk_store_contract::run(
            || async {
                let dir = tempfile::tempdir().expect("temp dir");
                let store =
                    SqliteStore::open(&dir.path().join("crossdesk.db")).expect("file store");
                (Arc::new(store), dir)
            },
            sla_watch_raises_each_breach_once,
        );
    }
}
