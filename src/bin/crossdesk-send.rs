//! `crossdesk-send FILE…`: signs sample events (e.g. `events/facebook/messenger-text.json`) with
//! the `CROSSDESK_*` secrets and posts them to a running local stack.
//! The channel is the name of the file's folder. `CROSSDESK_URL` overrides the stack's address.

use std::path::PathBuf;

use anyhow::{bail, Context};
use crossdesk::samples::{channel_of, post, sign, SigningSecrets};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let files: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if files.is_empty() {
        bail!("usage: crossdesk-send FILE… (e.g. events/chat/message.json)");
    }
    let base = std::env::var("CROSSDESK_URL").unwrap_or_else(|_| {
        let port = std::env::var("CROSSDESK_PORT").unwrap_or_else(|_| "8080".into());
        format!("http://127.0.0.1:{port}")
    });
    let secrets = SigningSecrets::from_env();
    let client = reqwest::Client::new();
    let mut failed = 0;
    for file in &files {
        let body =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let channel = channel_of(file).unwrap_or_default();
        let request = sign(&channel, body, &secrets, chrono::Utc::now())?;
        let (status, answer) = post(&client, &base, &request)
            .await
            .with_context(|| format!("cannot reach {base} (is crossdesk-local running?)"))?;
        println!("{status} {} {answer}", file.display());
        if !(200..300).contains(&status) {
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of {} events were refused", files.len());
    }
    Ok(())
}
