//! The browser demo: `cargo run -p keymint-examples --example browser_demo` and open the printed URL.
//! Everything runs on loopback until Ctrl-C.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let port = std::env::args().nth(1).map_or(Ok(8081), |p| p.parse())?;
    let demo = keymint_examples::demo::start(port).await?;
    println!(
        "open {} (issuer {}, API {})",
        demo.page_url, demo.issuer_url, demo.api_url
    );
    println!(
        "the same page from an origin no key allows: {}",
        demo.foreign_page_url
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
