#!/usr/bin/env bash
# make demo: crsc's seed flow on real components, set up by this script on a fresh Debian machine (as root).
#
#   1. the test sandbox (tests/sandbox): a Debian trixie root filesystem in a private mount namespace with CRIU 4,
#      runc and containerd 2.1 (a real CRI runtime that checkpoints and restores), built once and reused;
#   2. an API server (crsc's in-process fake kube-apiserver) and the kubelet's part, played over containerd's CRI
#      socket by tests/Crsc.Testing/Kubelet/SandboxKubelet;
#   3. the crsc daemon (the Native AOT binary from `make publish`) with its defaults: local store, embedded image
#      endpoint on 127.0.0.1:5055.
#
# A Deployment annotated crsc.io/checkpoint-restore=true runs a counter; crsc checkpoints it on a schedule; the
# container is killed and cold-starts from 1; crsc restores it in place from the checkpoint image and the counter goes
# on from where it was. Everything started here is stopped at the end (the root filesystem stays for next time).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bin=${CRSC_BINARY:-$root/bin/crsc}
[ -x "$bin" ] || { echo "demo: $bin missing; run make publish (make demo does)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it starts containerd and CRIU in a private mount namespace)" >&2; exit 1; }

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
sandbox=$root/tests/sandbox
sandbox_dir=${CRSC_SANDBOX_DIR:-/var/lib/crsc-sandbox}
shared=${CRSC_SANDBOX_SHARED:-$sandbox_dir/shared}
registry=${CRSC_SANDBOX_REGISTRY:-127.0.0.1:5000}

# one user of the sandbox at a time (the real-component tests take the same lock): a second one would stop this
# one's containerd when it tears down. Every command below runs with fd 9 closed ("9>&-"), so containerd and the
# daemons started here never keep the lock after the demo.
mkdir -p "$sandbox_dir"
exec 9>"$sandbox_dir/session.lock"
if ! flock -n 9; then
  echo "demo: another demo or test run is using the sandbox ($sandbox_dir/session.lock); waiting up to 30 min"
  flock -w 1800 9 || { echo "demo: gave up waiting for $sandbox_dir/session.lock" >&2; exit 1; }
fi

cleanup() {
  local rc=$?
  say "cleaning up"
  "$sandbox/stop-containerd.sh" >/dev/null 2>&1 9>&- || echo "demo: stop-containerd.sh failed (see above)" >&2
  "$sandbox/ns-down.sh" >/dev/null 2>&1 9>&- || true
  [ -n "${work:-}" ] && rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

say "the binary"
ls -l "$bin"
"$bin" version 9>&-

say "the sandbox: trixie root filesystem (first run ~2 min), containerd 2.1 + runc + CRIU 4, a loopback registry"
"$sandbox/setup-rootfs.sh" 9>&-
"$sandbox/ns-up.sh" 9>&-
"$sandbox/setup-containerd.sh" 9>&-
"$sandbox/start-containerd.sh" 9>&-
"$sandbox/in-ns.sh" criu --version 9>&- | head -n 1

mkdir -p "$shared"
work=$(mktemp -d "$shared/demo-XXXXXX")
chmod 0700 "$work"

say "building the demo driver"
dotnet build "$root/tests/Crsc.Demo" -c Release -nodeReuse:false -v:q -clp:ErrorsOnly -o "$work/driver" >/dev/null 9>&-

say "the seed flow"
CRSC_BINARY=$bin \
CRSC_DEMO_RUNTIME_ENDPOINT=unix:///run/crsc-sandbox/containerd.sock \
CRSC_DEMO_IMAGE=$registry/crsc-sandbox/busybox:1 \
CRSC_DEMO_CGROUP_PARENT=/crsc-sandbox \
CRSC_DEMO_WORK=$work \
  dotnet "$work/driver/Crsc.Demo.dll" 9>&-
