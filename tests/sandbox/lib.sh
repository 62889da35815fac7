# lib.sh -- shared settings and helpers of the crsc test sandbox; sourced by the other scripts.
#
# Everything can be moved with environment variables:
#   CRSC_SANDBOX_DIR     state on the host                 (default /var/lib/crsc-sandbox)
#   CRSC_SANDBOX_ROOTFS  the Debian trixie root filesystem  (default $CRSC_SANDBOX_DIR/rootfs)
#   CRSC_SANDBOX_RUN     pid files and the containerd socket, bound into the namespace at the
#                        same path                          (default /run/crsc-sandbox)
#   CRSC_SANDBOX_SHARED  scratch directory seen at the same path on the host and inside the
#                        namespace (archives, test data)    (default $CRSC_SANDBOX_DIR/shared)
#   CRSC_SANDBOX_REGISTRY  loopback registry address        (default 127.0.0.1:5000)
#   MIRROR               Debian mirror (default: the host's, from /etc/apt/sources.list.d/debian.sources)
set -euo pipefail

SANDBOX_DIR=${CRSC_SANDBOX_DIR:-/var/lib/crsc-sandbox}
R=${CRSC_SANDBOX_ROOTFS:-$SANDBOX_DIR/rootfs}
RUN_DIR=${CRSC_SANDBOX_RUN:-/run/crsc-sandbox}
SHARED_DIR=${CRSC_SANDBOX_SHARED:-$SANDBOX_DIR/shared}
REGISTRY=${CRSC_SANDBOX_REGISTRY:-127.0.0.1:5000}
HOLDER_PIDFILE=$RUN_DIR/ns-holder.pid
# marker file inside the rootfs: a process whose root holds it is our namespace
ROOT_MARK=.crsc-sandbox-root
SANDBOX_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

say() { printf '[sandbox %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[sandbox] ERROR: %s\n' "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# retry N CMD...: run CMD up to N times, 5 s apart (mirrors fail now and then)
retry() {
  local n=$1 i; shift
  for ((i = 1; i <= n; i++)); do
    "$@" && return 0
    [ "$i" -lt "$n" ] && { say "attempt $i/$n failed: $*; retrying in 5 s"; sleep 5; }
  done
  return 1
}

host_mirror() {
  if [ -n "${MIRROR:-}" ]; then echo "$MIRROR"; return; fi
  local m
  m=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1 | awk '{print $1}')
  [ -n "$m" ] || m=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$m" ] || die "cannot find the host's Debian mirror; set MIRROR"
  echo "$m"
}

# pid_alive FILE: the pid in FILE names a running process
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# holder_pid: pid of the process holding our namespace, or nothing (a stale pid file is ignored:
# the process must be alive and its root must be our rootfs)
holder_pid() {
  pid_alive "$HOLDER_PIDFILE" || return 0
  local p; p=$(cat "$HOLDER_PIDFILE")
  [ -e "/proc/$p/root/$ROOT_MARK" ] && [ ! -e "/proc/$p/root/.oldroot/proc" ] && echo "$p"
  return 0
}

# the environment every program started inside the namespace gets (runc finds criu through PATH)
CLEAN_ENV=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
           PODMAN_IGNORE_CGROUPSV1_WARNING=1)

# in_ns CMD...: run CMD inside the namespace (root = rootfs, cwd = /)
in_ns() {
  local h; h=$(holder_pid)
  [ -n "$h" ] || die "namespace is not up (run ns-up.sh)"
  # --wd without a value: the holder's cwd (/ of the rootfs); --wd=/ would resolve on the host side
  nsenter --target "$h" --mount --root --wd -- "${CLEAN_ENV[@]}" "$@"
}

# take_lock: serialize start/stop of the sandbox services (fd 9; detach/ns-up close it for children)
take_lock() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock -w 600 9 || die "another sandbox script holds $RUN_DIR/.lock"
}

# pid_is FILE NAME: the pid in FILE is alive and its executable's name contains NAME
pid_is() {
  pid_alive "$1" || return 1
  case "$(readlink "/proc/$(cat "$1")/exe" 2>/dev/null)" in *"$2"*) return 0;; *) return 1;; esac
}

# stop_pid FILE NAME: TERM the process (only if it is NAME), KILL after 10 s; removes FILE
stop_pid() {
  local f=$1 name=$2 p
  if ! pid_is "$f" "$name"; then rm -f "$f"; return 0; fi
  p=$(cat "$f")
  kill "$p" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then kill -9 "$p" 2>/dev/null || true; say "killed $name ($p) after 10 s"; else say "stopped $name ($p)"; fi
  rm -f "$f"
}

CONTAINERD_SOCK=$RUN_DIR/containerd.sock
CONTAINERD_PIDFILE=$RUN_DIR/containerd.pid
REGISTRY_PIDFILE=$RUN_DIR/registry.pid
# cgroupfs parent under which the tests put their pods (stop-containerd.sh removes it when empty)
CGROUP_PARENT=/crsc-sandbox
CNI_BRIDGE=crscsbx0
BUSYBOX_IMAGE=$REGISTRY/crsc-sandbox/busybox:1
PAUSE_IMAGE=$REGISTRY/crsc-sandbox/pause:1

# ns_members HOLDER_PID: pids of the processes in the holder's mount namespace, the holder excepted
ns_members() {
  local ino
  ino=$(stat -L -c %i "/proc/$1/ns/mnt" 2>/dev/null) || return 0
  ps -e -o pid=,mntns= | awk -v ns="$ino" -v h="$1" '$2 == ns && $1 != h {print $1}'
}
