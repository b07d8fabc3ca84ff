//! `event-sender`: drains the outgoing events queue (SQS standard), posting each event, signed,
//! to the integration webhook's endpoints; an event to retry goes back with its backoff, one
//! given up on is kept for replay (`POST /api/events/{id}/replay`).

use crossdesk_lambda::deploy::Deployment;
use crossdesk_lambda::events::send_events_batch;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deployment = Deployment::load().await?;
    let sender = deployment.event_sender(|name| std::env::var(name).ok())?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        let sender = sender.clone();
        async move {
            Ok::<_, lambda_runtime::Error>(send_events_batch(event.payload, &sender).await)
        }
    }))
    .await
}
