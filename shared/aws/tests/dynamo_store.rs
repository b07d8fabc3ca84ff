//! The ticket store contract against DynamoDB: moto server (or any DynamoDB) at
//! `AWS_ENDPOINT_URL`, one fresh table per test, deleted when the test ends.
//!
//! moto does not apply a request atomically: `TransactWriteItems` deep-copies the table for its
//! rollback while other request threads write to it (a 500 "dictionary changed size during
//! iteration"), and a cancelled transaction restores that copy, dropping whatever other requests
//! wrote meanwhile (messages stored twice, claims lost). DynamoDB applies every request
//! atomically, so the test client sends one request at a time per table ([`OneAtATime`]). The
//! store's tasks still race exactly as they would on DynamoDB: between reading and writing,
//! another task's request can land and make a condition fail.

use std::sync::Arc;

use aws_sdk_dynamodb::config::http::HttpRequest;
use aws_sdk_dynamodb::config::{HttpClient, RuntimeComponents, SharedHttpClient};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use crossdesk_aws::error::describe;
use crossdesk_aws::{sdk_config, table, DynamoTicketStore};
use crossdesk_core::TicketStore;
use tokio::sync::Semaphore;

/// An HTTP client that waits for each response before sending the next request.
#[derive(Debug, Clone)]
struct OneAtATime {
    inner: SharedHttpClient,
    turn: Arc<Semaphore>,
}

impl OneAtATime {
    fn new() -> Self {
        OneAtATime {
            inner: aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .build_https(),
            turn: Arc::new(Semaphore::new(1)),
        }
    }
}

impl HttpClient for OneAtATime {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(OneAtATimeConnector {
            inner: self.inner.http_connector(settings, components),
            turn: Arc::clone(&self.turn),
        })
    }
}

#[derive(Debug)]
struct OneAtATimeConnector {
    inner: SharedHttpConnector,
    turn: Arc<Semaphore>,
}

impl HttpConnector for OneAtATimeConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, turn) = (self.inner.clone(), Arc::clone(&self.turn));
        HttpConnectorFuture::new(async move {
            let _turn = turn.acquire_owned().await;
            inner.call(request).await
        })
    }
}

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
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .http_client(OneAtATime::new())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let name = format!("crossdesk-contract-{}", uuid::Uuid::now_v7().simple());
    table::create_table(&client, &name)
        .await
        .unwrap_or_else(|e| panic!("creating table {name} at {endpoint}: {e}"));
    let store = DynamoTicketStore::new(client.clone(), &name);
    (Arc::new(store), Table { client, name })
}

crossdesk_store_contract::store_contract_tests!(fresh_store);
