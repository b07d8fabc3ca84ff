//! `crossdesk-local`: Crossdesk on this machine, on an embedded database, no AWS account.
//! `--aws` runs it on the AWS adapters instead (at `AWS_ENDPOINT_URL` when set), and
//! `--create-resources` creates the table, queues and bucket where missing.

use crossdesk::{Backend, LocalConfig, LocalStack};
use crossdesk_core::faults::StoreFaults;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: crossdesk-local [--aws [--create-resources]] [--inject-store-faults SHARE [--fault-seed N]]

  (no flags)          run on an embedded SQLite database under CROSSDESK_DATA_DIR
  --aws               run on DynamoDB, SQS, S3 and SES (AWS_ENDPOINT_URL points at an emulator);
                      resources from CROSSDESK_TABLE_NAME, CROSSDESK_INBOUND_QUEUE_URL,
                      CROSSDESK_OUTBOUND_QUEUE_URL, CROSSDESK_BUCKET (CROSSDESK_SECRET_ID,
                      CROSSDESK_EVENTS_QUEUE_URL optional)
  --create-resources  with --aws: create <prefix>-tickets, <prefix>-inbound.fifo,
                      <prefix>-outbound.fifo, <prefix>-events (with dead-letter queues) and
                      <prefix>-data where missing; prefix from CROSSDESK_RESOURCE_PREFIX
                      (default crossdesk-local)
  --inject-store-faults SHARE
                      rehearsal only: fail that share (0.05 or 5%) of the ticket writer's and
                      the reply sender's store writes, half before and half after the write
  --fault-seed N      seeds which writes fail (default 1)";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
struct Options {
    backend: Backend,
    store_faults: Option<StoreFaults>,
}

/// Reads the command line.
fn options(args: &[String]) -> Result<Options, String> {
    let mut aws = false;
    let mut create_resources = false;
    let mut share = None;
    let mut seed = 1u64;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match arg.as_str() {
            "--aws" => aws = true,
            "--create-resources" => create_resources = true,
            "--inject-store-faults" => share = Some(value("--inject-store-faults")?),
            "--fault-seed" => {
                let text = value("--fault-seed")?;
                seed = text
                    .parse()
                    .map_err(|_| format!("--fault-seed: `{text}` is not a whole number"))?;
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let backend = match (aws, create_resources) {
        (false, true) => return Err("--create-resources needs --aws".into()),
        (false, false) => Backend::Embedded,
        (true, create_resources) => Backend::Aws { create_resources },
    };
    let store_faults = share
        .map(|share| StoreFaults::parse(&share, seed))
        .transpose()
        .map_err(|e| format!("--inject-store-faults: {e}"))?;
    Ok(Options {
        backend,
        store_faults,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let options = match options(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("crossdesk-local: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let mut config = LocalConfig::from_env()?;
    config.backend = options.backend;
    config.store_faults = options.store_faults;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        options(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn the_command_line_picks_the_backend_and_the_faults() {
        assert_eq!(
            parse(&[]).unwrap(),
            Options {
                backend: Backend::Embedded,
                store_faults: None
            }
        );
        assert_eq!(
            parse(&[
                "--aws",
                "--create-resources",
                "--inject-store-faults",
                "5%",
                "--fault-seed",
                "9"
            ])
            .unwrap(),
            Options {
                backend: Backend::Aws {
                    create_resources: true
                },
                store_faults: Some(StoreFaults {
                    share: 0.05,
                    seed: 9
                }),
            }
        );
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        for (args, says) in [
            (&["--create-resources"][..], "needs --aws"),
            (&["--inject-store-faults"][..], "needs a value"),
            (&["--inject-store-faults", "2"][..], "between 0 and 1"),
            (
                &["--inject-store-faults", "0.1", "--fault-seed", "x"][..],
                "whole number",
            ),
            (&["--verbose"][..], "unknown argument"),
        ] {
            let error = parse(args).unwrap_err();
            assert!(error.contains(says), "{args:?}: {error}");
        }
    }
}
