#!/bin/bash
# ns-up.sh -- start the sandbox's private mount namespace whose root mount IS the trixie rootfs
# (pivot_root, not chroot: runc/CRIU refuse a container whose root is not its namespace's root,
# "The root task has another root than mntns"). A `sleep infinity` holder keeps it alive; its
# pid is in $CRSC_SANDBOX_RUN/ns-holder.pid. Idempotent: prints the holder pid if already up.
#
# Mounts (all private to the namespace, gone with it): proc, /sys and /dev (recursive binds),
# tmpfs on /run and /tmp, and these host directories at the SAME path inside:
#   $CRSC_SANDBOX_RUN     (/run/crsc-sandbox: the containerd socket, pid files)
#   $CRSC_SANDBOX_SHARED  (/var/lib/crsc-sandbox/shared: scratch shared with the host)
# EXTRA_BINDS="HOST_DIR:DIR_INSIDE ..." adds more binds (read at start only).
# The network namespace is the host's: the loopback registry and the CRI socket serve both sides.
source "$(dirname "$0")/lib.sh"
need_root
[ -e "$R/$ROOT_MARK" ] || die "no rootfs at $R (run setup-rootfs.sh)"

h=$(holder_pid)
if [ -n "$h" ]; then echo "namespace already up: holder pid $h"; exit 0; fi

mkdir -p "$RUN_DIR" "$SHARED_DIR" "$R/.oldroot"
rm -f "$HOLDER_PIDFILE"
unshare --mount --propagation private -- /bin/bash -c '
  set -e
  # the holder must not keep the caller'"'"'s pipes or files open
  for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null || true
  R=$1; RUN_DIR=$2; SHARED_DIR=$3; EXTRA=$4
  mount --bind "$R" "$R"
  mount -t proc proc "$R/proc"
  mount --rbind /sys "$R/sys"
  mount --rbind /dev "$R/dev"
  mount -t tmpfs -o mode=0755 tmpfs "$R/run"
  mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
  # crun refuses a hybrid cgroup hierarchy (v1 controllers plus a v2 mount): hide the v2 mount
  # here only, so everything inside sees plain cgroup v1
  if mountpoint -q "$R/sys/fs/cgroup/unified"; then umount "$R/sys/fs/cgroup/unified"; fi
  for b in "$RUN_DIR:$RUN_DIR" "$SHARED_DIR:$SHARED_DIR" $EXTRA; do
    mkdir -p "$R${b#*:}"; mount --bind "${b%%:*}" "$R${b#*:}"
  done
  cd "$R"
  pivot_root . .oldroot
  cd /
  umount -l /.oldroot
  exec setsid sleep infinity
' ns-holder "$R" "$RUN_DIR" "$SHARED_DIR" "${EXTRA_BINDS:-}" </dev/null >/dev/null 2>&1 &
echo $! > "$HOLDER_PIDFILE"
for _ in $(seq 1 50); do
  h=$(holder_pid)
  [ -n "$h" ] && [ -z "$(ls -A "/proc/$h/root/.oldroot" 2>/dev/null)" ] && break
  kill -0 "$(cat "$HOLDER_PIDFILE")" 2>/dev/null || die "the namespace holder exited while starting"
  sleep 0.1
done
[ -n "$(holder_pid)" ] || die "namespace did not come up"
echo "namespace up: holder pid $(holder_pid)"
