#!/usr/bin/env bash
# Installs what is missing, builds, and serves the console on the embedded
# SQLite default (data in ./data). A debug build, the quick way to try it;
# `--release` builds optimised (the server and a size-optimised browser
# bundle inside it), the way to run it for real. Other arguments go to
# `keyward serve`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
profile=debug
if [ "${1:-}" = "--release" ]; then
  profile=release
  shift
fi
ensure_rust_tools
build_server "$profile"
say "starting Keyward ($profile build)"
exec "$ROOT/target/$profile/keyward" serve "$@"
