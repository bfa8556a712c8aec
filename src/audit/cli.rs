//! `ci-bridge audit verify` and `ci-bridge report`: the audit trail from the command line.
//! Both read an existing database and never create one: a mistyped path is an error, not
//! an empty, "intact" chain.

use crate::{config::Config, store::Store};

use super::{chain, formats, report};

/// Walks the evidence chain and compares it with the kept heads. Prints the number of
/// intact records and the head, or fails naming the first broken record.
pub async fn verify(config: &Config, anchors: &[String]) -> anyhow::Result<()> {
    let anchors = anchors
        .iter()
        .map(|text| chain::Head::parse(text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--anchor: {e}"))?;
    let store = Store::connect_existing(&config.database.url).await?;
    let state = chain::check(&store, &anchors).await?;
    if !state.intact {
        anyhow::bail!("{}", state.summary());
    }
    println!("{}", state.summary());
    Ok(())
}

/// Prints the compliance report of the last `since` in `format`.
pub async fn report(config: &Config, since: &str, format: &str) -> anyhow::Result<()> {
    let window = report::parse_since(since).map_err(anyhow::Error::msg)?;
    let format = formats::Format::parse(format)
        .ok_or_else(|| anyhow::anyhow!("--format must be markdown, json or csv"))?;
    let store = Store::connect_existing(&config.database.url).await?;
    let report = report::build(&store, window, since).await?;
    print!("{}", formats::render(&report, format));
    Ok(())
}
