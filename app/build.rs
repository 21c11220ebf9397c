//! `sqlx::migrate!` embeds the migrations at compile time, but a proc
//! macro cannot tell cargo to watch them: a new migration file must
//! rebuild this crate (sqlx's documented remedy).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
