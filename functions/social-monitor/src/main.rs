//! `social-monitor`: on its EventBridge schedule, searches X for recent public posts naming the
//! brand that do not address the account, and queues them as `monitoring` messages for the
//! ticket writer.

use std::sync::Arc;

use crossdesk_lambda::deploy::Deployment;
use crossdesk_lambda::health::ScheduledEvent;
use crossdesk_lambda::monitoring::run_poll;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deployment = Deployment::load().await?;
    let monitor = Arc::new(deployment.social_monitor(|name| std::env::var(name).ok())?);
    lambda_runtime::run(service_fn(|_event: LambdaEvent<ScheduledEvent>| {
        let monitor = monitor.clone();
        async move { run_poll(monitor.as_ref().as_ref()).await }
    }))
    .await
}
