//! `bench-bare`: answers every request 202 without reading anything: the machine's HTTP
//! limit, the first row of the benchmark.
//!
//! Usage: `bench-bare 127.0.0.1:18081`

use ci_bridge_bench::server::{reply, serve};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into())
        .parse()?;
    serve(listen, |_request| async { reply(202, "") }).await
}
