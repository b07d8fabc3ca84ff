//! `crossdesk-local`: Crossdesk on this machine, on an embedded database, no AWS account.
//! `--aws` runs it on the AWS adapters instead (at `AWS_ENDPOINT_URL` when set), and
//! `--create-resources` creates the table, queues and bucket where missing.

use crossdesk::{Backend, LocalConfig, LocalStack};
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: crossdesk-local [--aws [--create-resources]]

  (no flags)          run on an embedded SQLite database under CROSSDESK_DATA_DIR
  --aws               run on DynamoDB, SQS, S3 and SES (AWS_ENDPOINT_URL points at an emulator);
                      resources from CROSSDESK_TABLE_NAME, CROSSDESK_INBOUND_QUEUE_URL,
                      CROSSDESK_OUTBOUND_QUEUE_URL, CROSSDESK_BUCKET (CROSSDESK_SECRET_ID,
                      CROSSDESK_EVENTS_QUEUE_URL optional)
  --create-resources  with --aws: create <prefix>-tickets, <prefix>-inbound.fifo,
                      <prefix>-outbound.fifo, <prefix>-events (with dead-letter queues) and
                      <prefix>-data where missing; prefix from CROSSDESK_RESOURCE_PREFIX
                      (default crossdesk-local)";

/// The backend the command line asks for.
fn backend(args: &[String]) -> Result<Backend, String> {
    let mut aws = false;
    let mut create_resources = false;
    for arg in args {
        match arg.as_str() {
            "--aws" => aws = true,
            "--create-resources" => create_resources = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    match (aws, create_resources) {
        (false, true) => Err("--create-resources needs --aws".into()),
        (false, false) => Ok(Backend::Embedded),
        (true, create_resources) => Ok(Backend::Aws { create_resources }),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let backend = match backend(&args) {
        Ok(backend) => backend,
        Err(e) => {
            eprintln!("crossdesk-local: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let mut config = LocalConfig::from_env()?;
    config.backend = backend;
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
    match &config.backend {
        Backend::Embedded => println!("data dir: {}", config.data_dir.display()),
        Backend::Aws { .. } => println!("backend: AWS adapters"),
    }
    for (url, what) in stack.endpoints() {
        println!("  {url:<45} {what}");
    }
    tokio::signal::ctrl_c().await?;
    println!("stopping (finishing the current batch)…");
    stack.stop().await;
    Ok(())
}
