//! The running signer (placeholder until the publisher lands).
use crate::config::Config;

pub async fn run(_cfg: Config) -> Result<(), String> {
    Err("serve: not wired yet".into())
}
