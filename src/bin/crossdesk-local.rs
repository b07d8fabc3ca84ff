//! `crossdesk-local`: Crossdesk on this machine, on an embedded database, no AWS account.

use crossdesk::{LocalConfig, LocalStack};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = LocalConfig::from_env()?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if config.json_logs {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let stack = LocalStack::start(&config).await?;
    println!("crossdesk-local listening on http://{}", stack.addr);
    println!("data dir: {}", config.data_dir.display());
    for (url, what) in stack.endpoints() {
        println!("  {url:<45} {what}");
    }
    tokio::signal::ctrl_c().await?;
    println!("stopping (finishing the current batch)…");
    stack.stop().await;
    Ok(())
}
