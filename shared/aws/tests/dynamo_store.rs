//! The ticket store contract against DynamoDB: moto server (or any DynamoDB) at
//! `AWS_ENDPOINT_URL`, one fresh table per test, deleted when the test ends.
//!
//! The requests race for real: eight writers hit one table at once. (moto's DynamoDB is not
//! atomic per request on its own; `scripts/moto-server.py`, which `make test` starts, gives it
//! the per-request atomicity DynamoDB has.)

use std::sync::Arc;

use crossdesk_aws::error::describe;
use crossdesk_aws::{sdk_config, table, DynamoTicketStore};
use crossdesk_core::TicketStore;

/// A table of the test run, deleted on drop.
struct Table {
    client: aws_sdk_dynamodb::Client,
    name: String,
}

impl Drop for Table {
    fn drop(&mut self) {
        // The contract runs each test on a multi-threaded runtime, which may block here.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let delete = self.client.delete_table().table_name(&self.name).send();
        let deleted =
            tokio::task::block_in_place(|| runtime.block_on(delete).map_err(|e| describe(&e)));
        if let Err(reason) = deleted {
            eprintln!("could not delete test table {}: {reason}", self.name);
        }
    }
}

/// A new, empty table for `what` (deleted when the guard drops).
async fn new_table(what: &str) -> Table {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL is not set: these tests need moto server (or another DynamoDB). \
             Start one with `scripts/moto 5917` and run with AWS_ENDPOINT_URL=http://127.0.0.1:5917 \
             AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1, \
             or run `make test`, which does all that."
        )
    });
    let sdk = sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let name = format!("crossdesk-{what}-{}", uuid::Uuid::now_v7().simple());
    table::create_table(&client, &name)
        .await
        .unwrap_or_else(|e| panic!("creating table {name} at {endpoint}: {e}"));
    Table { client, name }
}

/// The ticket store (also the workflow and channel health store) on a new, empty table.
async fn table_store(what: &str) -> (Arc<DynamoTicketStore>, Table) {
    let table = new_table(what).await;
    let store = DynamoTicketStore::new(table.client.clone(), &table.name);
    (Arc::new(store), table)
}

/// A store on a new, empty table.
async fn fresh_store() -> (Arc<dyn TicketStore>, Table) {
    let (store, table) = table_store("contract").await;
    (store, table)
}

crossdesk_store_contract::store_contract_tests!(fresh_store);

/// The channel health contract on a new, empty table.
mod channel_health {
    use super::*;
    use crossdesk_core::health::ChannelHealthStore;

    async fn fresh_health_store() -> (Arc<dyn ChannelHealthStore>, Table) {
        let (store, table) = table_store("health").await;
        (store, table)
    }

    crossdesk_store_contract::channel_health_contract_tests!(fresh_health_store);
}

/// The outgoing events' ledger contract on a new, empty table.
mod event_ledger {
    use super::*;
    use crossdesk_aws::DynamoEventLedger;
    use crossdesk_core::events::EventLedger;

    async fn fresh_ledger() -> (Arc<dyn EventLedger>, Table) {
        let table = new_table("events").await;
        let ledger = DynamoEventLedger::new(table.client.clone(), &table.name);
        (Arc::new(ledger), table)
    }

    crossdesk_store_contract::event_ledger_contract_tests!(fresh_ledger);
}

/// The workflow store contract on a new, empty table.
mod workflow {
    use super::*;
    use crossdesk_core::workflow::WorkflowStore;

    async fn fresh_workflow_store() -> (Arc<dyn WorkflowStore>, Table) {
        let (store, table) = table_store("workflow").await;
        (store, table)
    }

    crossdesk_store_contract::workflow_contract_tests!(fresh_workflow_store);
}

/// The SLA watch over a new, empty table, with an injected clock.
mod sla_watch {
    use super::*;
    use crossdesk_store_contract::sla::sla_watch_raises_each_breach_once;

    #[test]
    fn raises_each_breach_once() {
        crossdesk_store_contract::run(|| table_store("sla"), sla_watch_raises_each_breach_once);
    }
}
