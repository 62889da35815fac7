#!/bin/bash
# ns-down.sh -- stop the sandbox namespace: every process still inside it (TERM, then KILL after
# 5 s; only processes of THIS mount namespace, found by pid), then the holder. Its mounts vanish
# with it; the rootfs stays. Idempotent. Run stop-containerd.sh first for a clean CRI shutdown.
source "$(dirname "$0")/lib.sh"
need_root
h=$(holder_pid)
if [ -z "$h" ]; then rm -f "$HOLDER_PIDFILE"; echo "namespace not up"; exit 0; fi
members() { ns_members "$h"; }
left=$(members)
if [ -n "$left" ]; then
  for p in $left; do echo "stopping leftover $p: $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)"; kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 50); do [ -z "$(members)" ] && break; sleep 0.1; done
  for p in $(members); do kill -9 "$p" 2>/dev/null || true; done
fi
kill "$h"
for _ in $(seq 1 50); do kill -0 "$h" 2>/dev/null || break; sleep 0.1; done
rm -f "$HOLDER_PIDFILE"
echo "namespace down (holder $h)"
