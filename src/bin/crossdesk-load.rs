//! `crossdesk-load`: sends signed chat webhooks at a fixed rate to a running local stack (only
//! ever on 127.0.0.1), then waits until every accepted message is stored, and writes the results:
//! a summary on stdout, `<out>.csv` (one line per request) and `<out>.svg` (latency over time).
//!
//! Settings (environment): `CROSSDESK_URL` (default `http://127.0.0.1:$CROSSDESK_PORT`),
//! `LOAD_RATE` (webhooks/s, default 2000), `LOAD_SECONDS` (default 20), `LOAD_CONCURRENCY`
//! (default 64), `LOAD_SESSIONS` (default 100), `LOAD_OUT` (default `bench/load`), and the
//! stack's `CROSSDESK_CHAT_SECRET` and `CROSSDESK_AGENT_TOKEN`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use crossdesk::load::{latency_svg, send, stored_messages, summarize, LoadPlan};
use crossdesk::samples::SigningSecrets;

fn setting<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .ok()
            .with_context(|| format!("{name}=`{v}` is not valid")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port = std::env::var("CROSSDESK_PORT").unwrap_or_else(|_| "8080".into());
    let plan = LoadPlan {
        base: std::env::var("CROSSDESK_URL").unwrap_or_else(|_| format!("http://127.0.0.1:{port}")),
        rate: setting("LOAD_RATE", 2000)?,
        duration: Duration::from_secs(setting("LOAD_SECONDS", 20)?),
        concurrency: setting("LOAD_CONCURRENCY", 64)?,
        sessions: setting("LOAD_SESSIONS", 100)?,
    };
    let out: String = setting("LOAD_OUT", "bench/load".to_string())?;
    let secrets = SigningSecrets::from_env();
    let token = secrets
        .agent_token
        .clone()
        .context("set CROSSDESK_AGENT_TOKEN")?;
    let before = stored_messages(&plan.base, &token)
        .await
        .with_context(|| format!("is crossdesk-local running at {}?", plan.base))?;
    let run = format!("{:x}", chrono::Utc::now().timestamp_millis());
    eprintln!(
        "sending {} webhooks/s for {:?} to {} ({} in flight at most)",
        plan.rate, plan.duration, plan.base, plan.concurrency
    );
    let start = Instant::now();
    let samples = send(&plan, &secrets, &run).await?;
    let accepted = samples.iter().filter(|s| s.status == 200).count() as u64;
    // Wait (two minutes at most) for the writer to store every accepted message.
    let deadline = Instant::now() + Duration::from_secs(120);
    let stored_after = loop {
        let stored = stored_messages(&plan.base, &token).await? - before;
        if stored >= accepted {
            break Some(start.elapsed());
        }
        if Instant::now() > deadline {
            eprintln!("only {stored} of {accepted} accepted messages stored after 2 minutes");
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let summary = summarize(&samples, plan.duration, stored_after);

    let mut csv = String::from("due_ms,latency_us,status\n");
    for s in &samples {
        csv.push_str(&format!(
            "{:.3},{},{}\n",
            s.due.as_secs_f64() * 1000.0,
            s.latency.as_micros(),
            s.status
        ));
    }
    std::fs::write(format!("{out}.csv"), csv).with_context(|| format!("cannot write {out}.csv"))?;
    let title = format!(
        "Acknowledgement latency, {} chat webhooks/s offered to the local stack",
        plan.rate
    );
    std::fs::write(
        format!("{out}.svg"),
        latency_svg(&samples, Duration::from_millis(500), &title),
    )?;
    println!("sent             {}", summary.sent);
    println!("accepted (200)   {}", summary.accepted);
    println!("offered rate     {:.0}/s", summary.offered_rate);
    println!(
        "ack p50          {:.2} ms",
        summary.p50.as_secs_f64() * 1000.0
    );
    println!(
        "ack p99          {:.2} ms",
        summary.p99.as_secs_f64() * 1000.0
    );
    println!(
        "ack max          {:.2} ms",
        summary.max.as_secs_f64() * 1000.0
    );
    match (summary.stored_after, summary.stored_rate()) {
        (Some(t), Some(rate)) => {
            println!("all stored after {:.2} s", t.as_secs_f64());
            println!("stored rate      {rate:.0}/s (request to stored ticket message)");
        }
        _ => println!("stored rate      not all accepted messages were stored"),
    }
    println!("wrote {out}.csv and {out}.svg");
    if summary.accepted < summary.sent || summary.stored_after.is_none() {
        bail!("the stack refused or lost part of the load");
    }
    Ok(())
}
