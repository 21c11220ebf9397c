#!/usr/bin/env bash
# Mutation testing of the domain (issue 22): run by hand or on a schedule,
# never in CI (it takes hours for every module).
#
#   ./scripts/mutants.sh                 # every module below
#   ./scripts/mutants.sh pki/mtls audit  # some of them
#   ./scripts/mutants.sh --list          # the mutants, without testing them
#   ./scripts/mutants.sh --shard 1/2 credentials/admin_tokens
#                                        # half of a module's mutants (1/2
#                                        # and 2/2 together are all of them)
#
# For each module, cargo-mutants changes its code one mutant at a time, in
# place, and runs the API tests that exercise it (on SQLite, the embedded
# default); a mutant no test notices is "missed". Results go to
# target/mutants/<module>/mutants.out (missed.txt, caught.txt, …).
#
# On 2 cores what makes this practical: the browser bundle is built once
# and embedded as it is (KEYWARD_CONSOLE_PREBUILT; the mutants change only
# server-side code, which the bundle does not contain), the baseline run is
# skipped (the test command proves it), and each module runs only the tests
# that reach it. Do not edit the tree while it runs: the mutants are made in
# place and undone after each.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# module (under app/src/domain/) -> the API tests (name filters) that reach it.
declare -A TESTS=(
  [pki/mtls]="mtls:: two_instances ca_rotation renewal"
  [pki/rotation]="ca_rotation authorization"
  [credentials/admin_tokens]="rest_admin token_hardening two_instances authorization console_admins"
  [credentials/server_keys]="console_integrations rest_admin rest_sessions two_instances social_plus"
  [credentials/sessions]="rest_sessions social_plus token_hardening hot_paths"
  [storage/views]="two_instances hot_paths token_hardening mtls:: rest_sessions abuse_limits observability ca_rotation"
  [audit]="audit console_audit unkeyed_chain master_key before_sealed_keys"
)
ORDER=(pki/mtls pki/rotation credentials/admin_tokens credentials/server_keys credentials/sessions storage/views audit)
MUTANTS_VERSION=27.0.0

list=""
shard=()
shard_name=""
modules=()
while [ $# -gt 0 ]; do
  case "$1" in
    --list) list=1 ;;
    --shard)
      # 1-based here (1/2 and 2/2); cargo-mutants counts shards from 0.
      if [[ "${2:-}" =~ ^([1-9][0-9]*)/([1-9][0-9]*)$ ]] \
        && [ "${BASH_REMATCH[1]}" -le "${BASH_REMATCH[2]}" ]; then
        shard=(--shard "$((BASH_REMATCH[1] - 1))/${BASH_REMATCH[2]}")
        shard_name="-${BASH_REMATCH[1]}of${BASH_REMATCH[2]}"
      else
        echo "--shard needs K/N with 1 <= K <= N, as 1/2" >&2
        exit 2
      fi
      shift
      ;;
    *)
      [ -n "${TESTS[$1]:-}" ] || { echo "unknown module $1 (known: ${ORDER[*]})" >&2; exit 2; }
      modules+=("$1")
      ;;
  esac
  shift
done
[ ${#modules[@]} -gt 0 ] || modules=("${ORDER[@]}")

ensure_rust_tools
if ! cargo mutants --version 2>/dev/null | grep -q "$MUTANTS_VERSION"; then
  say "installing cargo-mutants $MUTANTS_VERSION (crates.io)"
  cargo install --locked cargo-mutants --version "$MUTANTS_VERSION"
fi
if [ -n "$list" ]; then
  for m in "${modules[@]}"; do
    cargo mutants --list ${shard[@]+"${shard[@]}"} --package app --file "app/src/domain/$m.rs"
  done
  exit 0
fi
if ! git diff --quiet; then
  echo "the tree has uncommitted changes: commit or stash them first (mutants are made in place)" >&2
  exit 2
fi

say "building once, the browser bundle with it"
cargo build -q -p server --tests
bundle=$(ls -td target/debug/build/server-*/out/console | head -1)
mkdir -p target/mutants
rm -rf target/mutants/console
cp -r "$bundle" target/mutants/console
export KEYWARD_CONSOLE_PREBUILT="$ROOT/target/mutants/console"
export KEYWARD_TEST_DATABASE=sqlite
# The observability tests parse /metrics with the Prometheus client, as the
# test command does.
python_venv "$ROOT/target/test-venv" prometheus-client 0.26.0
export KEYWARD_TEST_PYTHON="$ROOT/target/test-venv/bin/python"

for m in "${modules[@]}"; do
  out="target/mutants/${m//\//-}$shard_name"
  mkdir -p "$out"
  say "mutants of app/src/domain/$m.rs (tests: ${TESTS[$m]})"
  # Exit codes 2 (some missed) and 3 (timeouts) are results; any other
  # failure stops here, not printed as an empty result.
  # `--cargo-arg=--test=api` builds the API tests alone for each mutant
  # (not the server's unit and binary tests too: a few seconds each).
  rc=0
  # shellcheck disable=SC2086 # the filters are words
  cargo mutants --in-place ${shard[@]+"${shard[@]}"} --package app --file "app/src/domain/$m.rs" \
    --test-package server --cargo-arg=--test=api --baseline skip --timeout 180 --output "$out" \
    -- --test api -- ${TESTS[$m]} || rc=$?
  case "$rc" in
    0 | 2 | 3) ;;
    *) echo "cargo mutants failed (exit $rc) on $m" >&2; exit "$rc" ;;
  esac
  for outcome in caught missed timeout unviable; do
    file="$out/mutants.out/$outcome.txt"
    printf '%-9s %s\n' "$outcome" "$( [ -f "$file" ] && wc -l < "$file" || echo 0)"
  done
done
