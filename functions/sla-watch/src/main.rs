//! `sla-watch`: every minute (EventBridge schedule), raises each ticket whose first response is
//! overdue once as an `sla.breached` event, with the targets of the desk settings; with agent
//! notifications on, also each chat waiting for an agent as `chat.waiting`.

use std::sync::Arc;

use crossdesk_lambda::deploy::Deployment;
use crossdesk_lambda::health::ScheduledEvent;
use crossdesk_lambda::settings::desk_settings;
use crossdesk_lambda::sla::{run_chat_waiting_check, run_sla_watch};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = desk_settings()?;
    let deployment = Deployment::load().await?;
    let watch = Arc::new(deployment.sla_watch(&settings)?);
    let chats = Arc::new(deployment.chat_waiting_check(|name| std::env::var(name).ok())?);
    lambda_runtime::run(service_fn(|_event: LambdaEvent<ScheduledEvent>| {
        let (watch, chats) = (watch.clone(), chats.clone());
        async move {
            let mut report = run_sla_watch(&watch).await?;
            report["chat_waiting"] = run_chat_waiting_check(chats.as_ref().as_ref()).await?;
            Ok::<_, String>(report)
        }
    }))
    .await
}
