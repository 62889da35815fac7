#!/bin/bash
# rootfs.sh -- a fresh copy of the cached bookworm rootfs (setup-rootfs.sh) for one install test, and
# ways into it that never touch the host's /etc or services: every mount is made in a private mount
# namespace and disappears with it.
#
#   rootfs.sh fresh DIR            copy the cached rootfs to DIR/rootfs (DIR must not exist)
#   rootfs.sh chroot DIR CMD...    run CMD chrooted in DIR/rootfs with /proc, /dev, /run and /tmp (private)
#   rootfs.sh boot DIR             boot DIR/rootfs with systemd-nspawn -b in the background; waits until its
#                                  systemd has finished starting, prints the container init's host pid
#   rootfs.sh enter PID CMD...     run CMD inside the booted container (all its namespaces)
#   rootfs.sh halt DIR             power the container off (TERM to nspawn, KILL after 20 s)
#   rootfs.sh remove DIR           halt, then delete DIR
# Root only. CRSC_INSTALL_ROOTFS names the cached rootfs (default /var/cache/crsc-tests/bookworm-rootfs).
set -euo pipefail
CACHE=${CRSC_INSTALL_ROOTFS:-/var/cache/crsc-tests/bookworm-rootfs}
CLEAN_ENV=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0)
die() { printf '[rootfs] ERROR: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
cmd=${1:?usage: rootfs.sh fresh|chroot|boot|enter|halt|remove ...}; shift

# the init of the container nspawn started: a descendant of nspawn whose pid in its own namespace is 1
container_init() {
  local nspawn=$1 p
  for p in $(pgrep -P "$nspawn" 2>/dev/null) $(for c in $(pgrep -P "$nspawn" 2>/dev/null); do pgrep -P "$c"; done); do
    if awk '/^NSpid:/ { exit !($NF == 1 && NF > 2) }' "/proc/$p/status" 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

case "$cmd" in
  fresh)
    d=${1:?rootfs.sh fresh DIR}
    [ -x "$CACHE/lib/systemd/systemd" ] || die "no cached rootfs at $CACHE (run tests/packaging/setup-rootfs.sh)"
    [ ! -e "$d" ] || die "$d exists"
    mkdir -p "$d"
    cp -a --reflink=auto "$CACHE" "$d/rootfs"
    echo "$d/rootfs"
    ;;
  chroot)
    d=${1:?rootfs.sh chroot DIR CMD...}; shift
    [ -d "$d/rootfs" ] || die "no rootfs in $d"
    exec unshare --mount --propagation private -- bash -c '
      set -e; R=$1; shift
      mount -t proc proc "$R/proc"; mount --rbind /dev "$R/dev"; mount --rbind /sys "$R/sys"
      mount -t tmpfs -o mode=0755 tmpfs "$R/run"; mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
      exec chroot "$R" "$@"' chroot "$d/rootfs" "${CLEAN_ENV[@]}" "$@"
    ;;
  boot)
    d=${1:?rootfs.sh boot DIR}
    [ -d "$d/rootfs" ] || die "no rootfs in $d"
    [ ! -s "$d/nspawn.pid" ] || ! kill -0 "$(cat "$d/nspawn.pid")" 2>/dev/null || die "already booted (nspawn pid $(cat "$d/nspawn.pid"))"
    # --register=no --keep-unit: no machined or host systemd here; --resolv-conf=off: leave the copy's own
    setsid unshare --mount --propagation private -- systemd-nspawn --quiet -D "$d/rootfs" -b \
      --register=no --keep-unit --resolv-conf=off --timezone=off --link-journal=no --private-network \
      --machine="crsc-install-$$" </dev/null >"$d/console.log" 2>&1 &
    echo $! > "$d/nspawn.pid"
    for _ in $(seq 1 600); do
      kill -0 "$(cat "$d/nspawn.pid")" 2>/dev/null || { tail -30 "$d/console.log" >&2; die "systemd-nspawn exited while booting"; }
      # unshare execs nspawn, so the pid is nspawn's
      if init=$(container_init "$(cat "$d/nspawn.pid")"); then
        state=$(nsenter -t "$init" -a "${CLEAN_ENV[@]}" systemctl is-system-running 2>/dev/null || true)
        case "$state" in running|degraded) echo "$init" > "$d/init.pid"; echo "$init"; exit 0 ;; esac
      fi
      sleep 0.1
    done
    tail -30 "$d/console.log" >&2; die "the container did not finish booting in 60 s"
    ;;
  enter)
    p=${1:?rootfs.sh enter PID CMD...}; shift
    exec nsenter -t "$p" -a "${CLEAN_ENV[@]}" "$@"
    ;;
  halt|remove)
    d=${1:?rootfs.sh $cmd DIR}
    if [ -s "$d/nspawn.pid" ] && kill -0 "$(cat "$d/nspawn.pid")" 2>/dev/null; then
      p=$(cat "$d/nspawn.pid")
      case "$(readlink "/proc/$p/exe")" in *systemd-nspawn*) ;; *) die "pid $p is not systemd-nspawn";; esac
      kill -TERM "$p"   # nspawn asks the container's systemd to power off
      for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
    fi
    rm -f "$d/nspawn.pid" "$d/init.pid"
    if [ "$cmd" = remove ]; then
      [ -z "$(findmnt -rn -R -o TARGET "$d/rootfs" 2>/dev/null)" ] || die "$d/rootfs still has mounts"
      rm -rf "$d"
    fi
    ;;
  *) die "unknown command $cmd" ;;
esac
