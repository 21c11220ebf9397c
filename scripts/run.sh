#!/usr/bin/env bash
# Installs what is missing, builds, and serves the console on the embedded
# SQLite default (data in ./data). Extra arguments go to `keyward serve`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_rust_tools
build_site
build_server
say "starting Keyward"
exec "$ROOT/target/debug/keyward" --site-root "$SITE" serve "$@"
