//! `keyward`: the console, the API and the operator's commands.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    server::cli::run().await
}
