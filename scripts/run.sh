#!/usr/bin/env bash
# Installs what is missing, builds, and serves the console on the embedded
# SQLite default (data in ./data). A debug build, the quick way to try it;
# `--release` first builds optimised (the server and a size-optimised
# wasm bundle), the way to run it for real. Other arguments go to
# `keyward serve`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
profile=debug
if [ "${1:-}" = "--release" ]; then
  profile=release
  shift
fi
ensure_rust_tools
build_site "$profile"
build_server "$profile"
say "starting Keyward ($profile build)"
exec "$ROOT/target/$profile/keyward" --site-root "$SITE" serve "$@"
