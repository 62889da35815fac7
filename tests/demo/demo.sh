#!/usr/bin/env bash
# make demo: the crsc demo on this machine. Today it runs the Native AOT daemon (built by `make publish`)
# until READY and shows what it reports; the checkpoint/restore demo on a real containerd grows here
# with the node checkpoint path and the restore flow.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${CRSC_BINARY:-$PWD/bin/crsc}
[ -x "$bin" ] || { echo "demo: $bin missing; run make publish" >&2; exit 1; }
command -v curl >/dev/null || { echo "demo: curl is needed (apt-get install curl)" >&2; exit 1; }

work=$(mktemp -d /tmp/crsc-demo.XXXXXX)
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "the binary"
ls -l "$bin"
"$bin" version

say "starting: crsc daemon (node agent; no API server configured here, so degraded but ready)"
export CRSC_SOCKET=$work/run/crsc.sock CRSC_STATE_DIR=$work/state CRSC_CHECKPOINT_DIR=$work/checkpoints \
       CRSC_STAGING_DIR=$work/staging CRSC_CONFIG=$work/config.yaml CRSC_LOG_FORMAT=console NODE_NAME=demo-node
: > "$CRSC_CONFIG"
"$bin" config check
start=$(date +%s%N)
"$bin" daemon &
daemon_pid=$!
for _ in $(seq 1 200); do
  curl -sf --unix-socket "$CRSC_SOCKET" http://crsc/readyz >/dev/null 2>&1 && break
  kill -0 "$daemon_pid" 2>/dev/null || { echo "demo: the daemon exited" >&2; exit 1; }
  sleep 0.05
done
echo "ready after $(( ($(date +%s%N) - start) / 1000000 )) ms (including this script's polling)"

say "GET /readyz on $CRSC_SOCKET (mode $(stat -c %a "$CRSC_SOCKET"))"
curl -s --unix-socket "$CRSC_SOCKET" http://crsc/readyz
say "GET /metrics (first lines)"
curl -s --unix-socket "$CRSC_SOCKET" http://crsc/metrics | grep -v '^#' | head -n 8

say "SIGTERM: a clean stop"
kill -TERM "$daemon_pid"; wait "$daemon_pid"; echo "exit code $?"; daemon_pid=
