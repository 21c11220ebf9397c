# Shared by scripts/run.sh and scripts/test.sh: install what is missing,
# then build the console (wasm + CSS) and the server. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WASM_BINDGEN_VERSION="0.2.130" # must equal the `=` pin of wasm-bindgen in Cargo.toml
SITE="$ROOT/target/site"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

say() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} (apt)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}

ensure_rust_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32 target"
    rustup target add wasm32-unknown-unknown
  fi
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\$"; then
    say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
    # Not --locked: one of its locked dependencies is not in the registry.
    cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION"
  fi
}

# One profile (dev) for everything, so running and testing share builds.
# `build_site [release]`: the wasm bundle, debug by default; `release`
# uses the size-optimised `wasm-release` profile.
build_site() {
  local profile="${1:-debug}" cargo_profile=dev
  [ "$profile" = release ] && { profile=wasm-release; cargo_profile=wasm-release; }
  say "building the browser bundle (wasm, $profile)"
  cargo build -p frontend --lib --target wasm32-unknown-unknown --profile "$cargo_profile"
  mkdir -p "$SITE/pkg"
  wasm-bindgen --target web --no-typescript --out-dir "$SITE/pkg" --out-name keyward \
    "$ROOT/target/wasm32-unknown-unknown/$profile/frontend.wasm"
  cp "$ROOT/style/main.css" "$SITE/pkg/keyward.css"
}

# `build_server [release]`: target/debug/keyward, or target/release/keyward.
build_server() {
  local profile="${1:-debug}"
  say "building the server ($profile)"
  if [ "$profile" = release ]; then
    cargo build --release -p server --bin keyward
  else
    cargo build -p server --bin keyward
  fi
}
