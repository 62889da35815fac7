#!/bin/bash
# stop-containerd.sh -- undo start-containerd.sh: kill and remove every container task of the
# k8s.io namespace, stop containerd and the registry (by their pid files), kill what is left of
# their children (shims) in the sandbox namespace, remove the empty pod cgroups under
# /crsc-sandbox and the CNI bridge. The namespace itself stays up (ns-down.sh takes it down);
# the rootfs, its images and the registry's content stay for the next start. Idempotent.
source "$(dirname "$0")/lib.sh"
need_root
take_lock

# enter through the holder, or through containerd itself if the holder is gone
target=$(holder_pid)
[ -n "$target" ] || { pid_is "$CONTAINERD_PIDFILE" containerd && target=$(cat "$CONTAINERD_PIDFILE"); } || true
ns() { nsenter --target "$target" --mount --root --wd -- "${CLEAN_ENV[@]}" "$@"; }

if [ -n "$target" ] && pid_is "$CONTAINERD_PIDFILE" containerd; then
  # every ctr call is bounded: a task held by a hung CRIU dump (ptrace) made `ctr tasks kill` block for minutes;
  # what does not answer in time is left to the kill of the namespace's leftover processes below
  ctr_k8s() { timeout --kill-after=5 20 nsenter --target "$target" --mount --root --wd -- "${CLEAN_ENV[@]}" \
                ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
  # ids only (first column of a listing, header skipped); anything else is ignored
  ids() { ctr_k8s "$@" 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9a-f]+$/ {print $1}'; }
  # a test's own CRI cleanup normally leaves nothing here; what is left is killed and removed
  left_tasks=$(ids tasks ls)
  [ -n "$left_tasks" ] && say "killing and removing $(echo "$left_tasks" | wc -w) container task(s) left in containerd"
  for id in $left_tasks; do ctr_k8s tasks kill --all --signal SIGKILL "$id" >/dev/null 2>&1 || say "could not kill task ${id:0:12} (in 20 s)"; done
  for id in $(ids tasks ls); do
    for _ in $(seq 1 30); do ctr_k8s tasks delete "$id" >/dev/null 2>&1 && break; sleep 0.1; done
  done
  for id in $(ids containers ls); do ctr_k8s containers delete "$id" >/dev/null 2>&1 || true; done
  for id in $(ids sandboxes ls); do ctr_k8s sandboxes rm --force "$id" >/dev/null 2>&1 || true; done
fi
stop_pid "$CONTAINERD_PIDFILE" containerd
stop_pid "$REGISTRY_PIDFILE" docker-registry
rm -f "$CONTAINERD_SOCK" "$CONTAINERD_SOCK.ttrpc"

# whatever containerd left in the namespace (shims, containers whose shim died): by pid, and
# only processes of this namespace; the holder stays
if [ -n "$target" ] && [ -n "$(holder_pid)" ]; then
  h=$(holder_pid)
  for _ in 1 2 3; do
    left=$(ns_members "$h")
    [ -z "$left" ] && break
    for p in $left; do say "killing leftover $p: $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)"; kill -9 "$p" 2>/dev/null || true; done
    sleep 0.3
  done
fi

# pod cgroups (cgroups are host-wide) and the CNI bridge (it lives in the host's network namespace)
for d in /sys/fs/cgroup/*"$CGROUP_PARENT"; do
  [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
done
ls -d /sys/fs/cgroup/*"$CGROUP_PARENT" >/dev/null 2>&1 && say "WARNING: cgroups left under $CGROUP_PARENT"
if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then ip link del "$CNI_BRIDGE" && say "deleted bridge $CNI_BRIDGE"; fi
say "sandbox services stopped"
