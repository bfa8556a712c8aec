//! `ci-bridge audit verify` and `ci-bridge report`: the audit trail from the command line.

use crate::{config::Config, store::Store};

use super::{evidence, formats, report};

/// Walks the evidence chain. Prints the number of intact records, or fails naming the
/// first broken one.
pub async fn verify(config: &Config) -> anyhow::Result<()> {
    let store = Store::connect(&config.database.url, 2).await?;
    let rows = store.evidence(None).await?;
    match evidence::verify(&rows) {
        Ok(count) => {
            println!("evidence chain intact: {count} record(s)");
            Ok(())
        }
        Err(broken) => anyhow::bail!(
            "evidence chain broken at record {}: {}",
            broken.seq,
            broken.reason
        ),
    }
}

/// Prints the compliance report of the last `since` in `format`.
pub async fn report(config: &Config, since: &str, format: &str) -> anyhow::Result<()> {
    let window = report::parse_since(since).map_err(anyhow::Error::msg)?;
    let format = formats::Format::parse(format)
        .ok_or_else(|| anyhow::anyhow!("--format must be markdown, json or csv"))?;
    let store = Store::connect(&config.database.url, 2).await?;
    let report = report::build(&store, window, since).await?;
    print!("{}", formats::render(&report, format));
    Ok(())
}
