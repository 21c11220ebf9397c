# Shared by scripts/run.sh and scripts/test.sh: install what is missing,
# then build the server (with its console built in). Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
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

# The server's build (server/build.rs) also builds the browser bundle it
# embeds, for wasm32.
ensure_rust_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32 target"
    rustup target add wasm32-unknown-unknown
  fi
}

# `build_server [release]`: target/debug/keyward, or target/release/keyward
# (with a size-optimised browser bundle). Exactly the root `cargo build`.
build_server() {
  local profile="${1:-debug}"
  say "building the server ($profile)"
  if [ "$profile" = release ]; then
    cargo build --release
  else
    cargo build
  fi
}

# `python_venv DIR PACKAGE VERSION`: a virtualenv in DIR with PACKAGE at
# VERSION from PyPI, made (again) only when it is missing or another
# version.
python_venv() {
  local venv="$1" package="$2" version="$3"
  if "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$package') != '$version')" 2>/dev/null; then
    return 0
  fi
  # Debian's python3 runs `-m venv --help` without python3-venv, but
  # cannot make a venv: ensurepip is what that package brings.
  python3 -c 'import ensurepip' >/dev/null 2>&1 || apt_install python3-venv
  say "installing $package $version (PyPI)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$package==$version"
}
