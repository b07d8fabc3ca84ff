//! `channel-health`: on its EventBridge schedule, checks every channel (tokens, webhook
//! subscriptions, the SES receipt rule, silence), records the results for `GET /api/channels`
//! and reports failing checks as the `CrossdeskChannelCheckFailures` metric.

use std::sync::Arc;

use crossdesk_lambda::deploy::Deployment;
use crossdesk_lambda::health::{run_checks, ScheduledEvent};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deployment = Deployment::load().await?;
    let checker = Arc::new(deployment.health_checker(|name| std::env::var(name).ok())?);
    lambda_runtime::run(service_fn(|_event: LambdaEvent<ScheduledEvent>| {
        let checker = checker.clone();
        async move { run_checks(&checker).await }
    }))
    .await
}
