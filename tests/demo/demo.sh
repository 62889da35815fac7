#!/usr/bin/env bash
# make demo: crsc's seed flow on real components, set up by this script on a fresh Debian machine (as root).
#
#   1. the test sandbox (tests/sandbox): a Debian trixie root filesystem in a private mount namespace with CRIU 4.2
#      (sid), runc and containerd 2.1 (a real CRI runtime that checkpoints and restores), built once and reused;
#   2. an API server (crsc's in-process fake kube-apiserver) and the kubelet's part, played over containerd's CRI
#      socket by tests/Crsc.Testing/Kubelet/SandboxKubelet;
#   3. the crsc daemon (the Native AOT binary, `make publish`) with its defaults: local store, embedded image
#      endpoint on 127.0.0.1:5055.
#
# A Deployment annotated crsc.io/checkpoint-restore=true runs a counter; crsc checkpoints it on a schedule; the
# container is killed and cold-starts from 1; crsc restores it in place from the checkpoint image and the counter goes
# on from where it was. Everything started here is stopped at the end (the root filesystem stays for next time).
#
# The sandbox is set up in the background while the binary and the demo driver build (they overlap: one is mostly
# downloads, the other CPU). On failure the work directory (daemon log, CRIU logs) is kept and its path printed.
# CRSC_BINARY=path skips the build of the binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it starts containerd and CRIU in a private mount namespace)" >&2; exit 1; }

t0=$(date +%s)
say() { printf '\n\033[1m== [%4d s] %s\033[0m\n' "$(( $(date +%s) - t0 ))" "$*"; }
note() { printf '   [%4d s] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }
sandbox=$root/tests/sandbox
sandbox_dir=${CRSC_SANDBOX_DIR:-/var/lib/crsc-sandbox}
shared=${CRSC_SANDBOX_SHARED:-$sandbox_dir/shared}
registry=${CRSC_SANDBOX_REGISTRY:-127.0.0.1:5000}
run_dir=${CRSC_SANDBOX_RUN:-/run/crsc-sandbox}
out=$root/obj/demo            # build output of the driver and the sandbox setup log; kept between runs
mkdir -p "$out"
work=""
setup_pid=""

# one user of the sandbox at a time (the real-component tests take the same lock): a second one would stop this
# one's containerd when it tears down. Every command below runs with fd 9 closed ("9>&-"), so containerd and the
# daemons started here never keep the lock after the demo.
mkdir -p "$sandbox_dir"
exec 9>"$sandbox_dir/session.lock"
if ! flock -n 9; then
  echo "demo: another demo or test run is using the sandbox ($sandbox_dir/session.lock); waiting up to 30 min"
  flock -w 1800 9 || { echo "demo: gave up waiting for $sandbox_dir/session.lock" >&2; exit 1; }
fi

# CRIU's logs live in containerd's work directories inside the namespace (its /run and /tmp are private): copy them
# out while the namespace is still up, and show the end of each
collect_criu_logs() {
  local dest=$work/criu-logs
  mkdir -p "$dest"
  timeout 30 "$sandbox/in-ns.sh" sh -c \
    'find /run /tmp /var/lib/containerd -xdev -type f \( -name "dump*.log" -o -name "restore*.log" -o -name "criu*.log" \) 2>/dev/null' \
    9>&- 2>/dev/null | while read -r f; do
      local name; name=$(echo "$f" | sed 's|^/||; s|/|_|g')
      timeout 10 "$sandbox/in-ns.sh" cat "$f" > "$dest/$name" 9>&- 2>/dev/null || true
    done
  local n; n=$(find "$dest" -type f | wc -l)
  if [ "$n" -eq 0 ]; then note "no CRIU log found in the sandbox"; return; fi
  note "CRIU logs copied to $dest ($n file(s)); the end of each:"
  for f in "$dest"/*; do echo "   --- ${f##*/}"; tail -n 8 "$f" | sed 's/^/   | /'; done
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ -n "$setup_pid" ] && kill -0 "$setup_pid" 2>/dev/null; then
    note "stopping the sandbox setup still running (pid $setup_pid)"
    kill "$setup_pid" 2>/dev/null; wait "$setup_pid" 2>/dev/null
  fi
  [ "$rc" -ne 0 ] && [ -n "$work" ] && collect_criu_logs
  say "cleaning up: stopping containerd, the registry and the namespace (at most 3 min)"
  timeout --kill-after=10 120 "$sandbox/stop-containerd.sh" 9>&- 2>&1 | sed 's/^/   /'
  [ "${PIPESTATUS[0]}" -eq 0 ] || echo "demo: WARNING: stop-containerd.sh failed or timed out; see above" >&2
  timeout --kill-after=10 60 "$sandbox/ns-down.sh" 9>&- 2>&1 | sed 's/^/   /'
  [ "${PIPESTATUS[0]}" -eq 0 ] || echo "demo: WARNING: ns-down.sh failed or timed out; see above" >&2
  if [ -n "$work" ]; then
    if [ "$rc" -eq 0 ]; then
      rm -rf "$work"
    else
      echo
      echo "demo FAILED (exit $rc) after $(( $(date +%s) - t0 )) s. Kept for a look: $work"
      echo "  daemon log: $work/daemon.log   CRIU logs: $work/criu-logs/   sandbox setup log: $out/sandbox-setup.log"
      echo "  (it holds checkpoint archives, i.e. process memory: remove it when done)"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "the sandbox, in the background: trixie root filesystem, containerd 2.1 + runc + CRIU 4.2, a loopback registry"
note "first run on a fresh machine ~4-6 min (downloads ~300 MB from the Debian mirror), then ~5 s; log: $out/sandbox-setup.log"
( set -e
  "$sandbox/setup-rootfs.sh"
  "$sandbox/ns-up.sh"
  "$sandbox/setup-containerd.sh"
  "$sandbox/start-containerd.sh"
) >"$out/sandbox-setup.log" 2>&1 9>&- &
setup_pid=$!

if [ -n "${CRSC_BINARY:-}" ]; then
  bin=$CRSC_BINARY
  [ -x "$bin" ] || { echo "demo: CRSC_BINARY=$bin is not an executable" >&2; exit 1; }
else
  say "the Native AOT binary (make publish; first run on a fresh machine ~6-9 min on 2 cores, then ~1-2 min)"
  make --no-print-directory -C "$root" publish 9>&-
  bin=$root/bin/crsc
fi
"$bin" version 9>&-

say "the demo driver (built once into $out/driver, then incremental)"
dotnet build "$root/tests/Crsc.Demo" -c Release -nodeReuse:false -v:q -clp:ErrorsOnly -o "$out/driver" 9>&- | sed 's/^/   /'
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "demo: the demo driver did not build" >&2; exit 1; }

say "waiting for the sandbox setup (at most 30 min)"
waited=0
while kill -0 "$setup_pid" 2>/dev/null; do
  if [ $(( waited % 15 )) -eq 0 ]; then note "still setting up the sandbox: $(tail -n 1 "$out/sandbox-setup.log" 2>/dev/null | cut -c1-120)"; fi
  [ "$waited" -ge 1800 ] && { echo "demo: the sandbox setup did not finish in 30 min" >&2; exit 1; }
  sleep 1; waited=$((waited + 1))
done
if ! wait "$setup_pid"; then
  setup_pid=""
  echo "demo: the sandbox setup failed; the end of its log ($out/sandbox-setup.log):" >&2
  tail -n 25 "$out/sandbox-setup.log" | sed 's/^/   /' >&2
  exit 1
fi
setup_pid=""
grep -E "criu .* dumped|ready in|up in" "$out/sandbox-setup.log" | sed 's/^/   /'

mkdir -p "$shared"
work=$(mktemp -d "$shared/demo-XXXXXX")
chmod 0700 "$work"

say "the seed flow (every wait below names what it waits for and its limit)"
CRSC_BINARY=$bin \
CRSC_DEMO_RUNTIME_ENDPOINT=unix://$run_dir/containerd.sock \
CRSC_DEMO_IMAGE=$registry/crsc-sandbox/busybox:1 \
CRSC_DEMO_CGROUP_PARENT=/crsc-sandbox \
CRSC_DEMO_WORK=$work \
  dotnet "$out/driver/Crsc.Demo.dll" 9>&-
say "done in $(( $(date +%s) - t0 )) s"
