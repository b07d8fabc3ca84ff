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

/// A store on a new, empty table.
async fn fresh_store() -> (Arc<dyn TicketStore>, Table) {
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
    let name = format!("crossdesk-contract-{}", uuid::Uuid::now_v7().simple());
    table::create_table(&client, &name)
        .await
        .unwrap_or_else(|e| panic!("creating table {name} at {endpoint}: {e}"));
    let store = DynamoTicketStore::new(client.clone(), &name);
    (Arc::new(store), Table { client, name })
}

crossdesk_store_contract::store_contract_tests!(fresh_store);

/// The channel health contract on a new, empty table.
mod channel_health {
    use super::*;
    use crossdesk_core::health::ChannelHealthStore;

    async fn fresh_health_store() -> (Arc<dyn ChannelHealthStore>, Table) {
        let sdk = sdk_config().await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let name = format!("crossdesk-health-{}", uuid::Uuid::now_v7().simple());
        table::create_table(&client, &name)
            .await
            .unwrap_or_else(|e| panic!("creating table {name}: {e}"));
        let store = DynamoTicketStore::new(client.clone(), &name);
        (Arc::new(store), Table { client, name })
    }

    crossdesk_store_contract::channel_health_contract_tests!(fresh_health_store);
}

/// The outgoing events' ledger contract on a new, empty table.
mod event_ledger {
    use super::*;
    use crossdesk_aws::DynamoEventLedger;
    use crossdesk_core::events::EventLedger;

    async fn fresh_ledger() -> (Arc<dyn EventLedger>, Table) {
        let sdk = sdk_config().await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let name = format!("crossdesk-events-{}", uuid::Uuid::now_v7().simple());
        table::create_table(&client, &name)
            .await
            .unwrap_or_else(|e| panic!("creating table {name}: {e}"));
        let ledger = DynamoEventLedger::new(client.clone(), &name);
        (Arc::new(ledger), Table { client, name })
    }

    crossdesk_store_contract::event_ledger_contract_tests!(fresh_ledger);
}

/// The workflow store contract on a new, empty table.
mod workflow {
    use super::*;
    use crossdesk_core::workflow::WorkflowStore;

    async fn fresh_workflow_store() -> (Arc<dyn WorkflowStore>, Table) {
        let sdk = sdk_config().await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let name = format!("crossdesk-workflow-{}", uuid::Uuid::now_v7().simple());
        table::create_table(&client, &name)
            .await
            .unwrap_or_else(|e| panic!("creating table {name}: {e}"));
        let store = DynamoTicketStore::new(client.clone(), &name);
        (Arc::new(store), Table { client, name })
    }

    crossdesk_store_contract::workflow_contract_tests!(fresh_workflow_store);
}
