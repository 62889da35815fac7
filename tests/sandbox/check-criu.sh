#!/bin/bash
# check-criu.sh -- can CRIU in the sandbox dump a process on THIS machine? Dumps a trivial process
# (`sleep`) with a bounded timeout and fails fast, with the reason, when it does not finish.
#
# Why: trixie's criu 4.1.1 hangs in every dump on some CPUs (seen on AMD EPYC virtual CPUs with
# AVX-512 state: criu sits in wait4, the target in ptrace_stop, the log ends after the parasite
# starts). Without this check every real-runtime test waits out its own timeout (minutes each) and
# the cause is buried in containerd's logs. setup-containerd.sh runs it after installing criu.
#
#     tests/sandbox/check-criu.sh             (CRSC_CRIU_CHECK_TIMEOUT=seconds, default 30)
# Needs the namespace up (ns-up.sh). Exit 0: dumped in time; 1: failed or hung (message names the
# CPU, the criu version and the end of the dump log, which is kept in $SHARED_DIR/criu-check).
source "$(dirname "$0")/lib.sh"
need_root
[ -n "$(holder_pid)" ] || die "namespace is not up (run ns-up.sh)"

limit=${CRSC_CRIU_CHECK_TIMEOUT:-30}
dir=$SHARED_DIR/criu-check
rm -rf "$dir"; mkdir -p -m 0700 "$dir"
version=$(in_ns criu --version 2>/dev/null | sed -n 's/^Version: *//p')
cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -1)

pid=$(in_ns detach sleep 1000)
[ -n "$pid" ] || die "could not start the probe process in the sandbox"
t0=$(date +%s%N)
set +e
# the host's timeout: it kills criu (and so releases the ptrace'd target) when the dump hangs
timeout --kill-after=5 "$limit" nsenter --target "$(holder_pid)" --mount --root --wd -- "${CLEAN_ENV[@]}" \
  criu dump -t "$pid" -D "$dir" -o dump.log -v4 >/dev/null 2>&1
rc=$?
set -e
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# criu kills the process after a successful dump; on a failure or a hang it is still there
kill -9 "$pid" 2>/dev/null || true

if [ "$rc" -eq 0 ] && [ -s "$dir/inventory.img" ]; then
  say "criu $version dumped a process in $ms ms on this CPU ($cpu)"
  rm -rf "$dir"
  exit 0
fi
if [ "$rc" -ge 124 ]; then
  why="did not finish within ${limit} s (hung)"
else
  why="failed (exit $rc)"
fi
{
  echo "[sandbox] ERROR: criu $version could not dump a trivial process on this machine: the dump $why."
  echo "  CPU: $cpu"
  echo "  Known cause: trixie's criu 4.1.1 hangs in every dump on some CPUs (AMD, AVX-512 state);"
  echo "  setup-containerd.sh installs criu 4.2.x from sid for this reason; check 'criu --version' in the rootfs."
  echo "  Every checkpoint test would fail; stopping here. Dump log ($dir/dump.log), last lines:"
  tail -n 15 "$dir/dump.log" 2>/dev/null | sed 's/^/    /'
} >&2
exit 1
