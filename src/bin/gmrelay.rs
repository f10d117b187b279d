//! The `gmrelay` binary: parses the command line and hands it to the library.

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = gmrelay::cli::Cli::parse();
    if let Err(err) = gmrelay::cli::run(cli).await {
        eprintln!("error: {err}");
        for cause in err.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}
