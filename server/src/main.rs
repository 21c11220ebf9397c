//! `keyward`: the console, the API and the operator's commands.

/// mimalloc instead of glibc's malloc: perf put a fifth of the server's
/// time in glibc's allocator (its arenas' locks and consolidation) under
/// the session load, where every request allocates and frees on whichever
/// worker thread runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    server::cli::run().await
}
