#!/bin/bash
# setup-rootfs.sh -- build (once) and cache the clean Debian bookworm root filesystem the package
# install tests (tests/Crsc.E2E.Tests/Packaging) copy for every run: minbase + systemd (boots under
# systemd-nspawn -b) + crsc's runtime libraries' neighbours, nothing of crsc.
#
#   CRSC_INSTALL_ROOTFS  the cached rootfs (default /var/cache/crsc-tests/bookworm-rootfs)
#   MIRROR               Debian mirror (default: the host's)
#
# Idempotent: a stamp records the package list; a rootfs whose stamp or systemd is missing is
# rebuilt from nothing. Downloads are retried. The host gets debootstrap and nothing else. Root only.
set -euo pipefail
# retry and host_mirror come from the sandbox's helpers; R, CLEAN_ENV, say and die below are this script's own
. "$(dirname "$0")/../sandbox/lib.sh"
R=${CRSC_INSTALL_ROOTFS:-/var/cache/crsc-tests/bookworm-rootfs}
SUITE=bookworm
STAMP_VERSION=1
# libssl3/libzstd1: crsc's package dependencies, installed up front so dpkg -i needs no network.
# systemd-container is not needed inside; systemd-analyze and journalctl come with systemd.
PACKAGES=(systemd systemd-sysv dbus libssl3 libzstd1 libc6 procps ca-certificates)
APT_OPTS=(-o Acquire::Retries=5 -o Acquire::http::Timeout=60 -o Dpkg::Use-Pty=0)
STAMP=$R/etc/crsc-install-test.stamp
CLEAN_ENV=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8)
LOG=$(dirname "$R")/$(basename "$R").log

say() { printf '[install-rootfs %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[install-rootfs] ERROR: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
stamp_text() { printf 'crsc install-test rootfs v%s suite=%s\n%s\n' "$STAMP_VERSION" "$SUITE" "${PACKAGES[*]}"; }
healthy() {
  [ "$(cat "$STAMP" 2>/dev/null)" = "$(stamp_text)" ] && [ -x "$R/lib/systemd/systemd" ] && [ -x "$R/usr/bin/dpkg" ] \
    && [ -x "$R/bin/systemctl" ] && chroot "$R" /usr/bin/dpkg --audit >/dev/null 2>&1
}

t0=$(date +%s)
if healthy; then say "cached rootfs is ready: $R"; exit 0; fi
command -v debootstrap >/dev/null || die "debootstrap is missing (make deps)"
M=$(host_mirror)
mkdir -p "$(dirname "$R")"
# one builder at a time; a second caller waits and then finds the rootfs ready
exec 9>"$R.lock"; flock -w 1800 9 || die "another build holds $R.lock"
if healthy; then say "cached rootfs is ready: $R"; exit 0; fi

build() {
  if [ -e "$R" ]; then
    [ -z "$(findmnt -rn -R -o TARGET "$R" 2>/dev/null)" ] || die "$R has mounts below it; unmount them first"
    rm -rf "$R"
  fi
  say "debootstrap $SUITE (minbase) from $M into $R"
  debootstrap --variant=minbase "$SUITE" "$R" "$M" >"$LOG" 2>&1 || { tail -20 "$LOG" >&2; return 1; }
  printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"; chmod 0755 "$R/usr/sbin/policy-rc.d"
  echo "deb $M $SUITE main" > "$R/etc/apt/sources.list"
  cp -L /etc/resolv.conf "$R/etc/resolv.conf"
  # apt runs in a private mount namespace: its /proc and /dev mounts never reach the host
  unshare --mount --propagation private -- bash -c '
    set -e; R=$1; shift
    mount -t proc proc "$R/proc"; mount --rbind /dev "$R/dev"
    chroot "$R" "$@"' apt "$R" "${CLEAN_ENV[@]}" DEBIAN_FRONTEND=noninteractive bash -c '
      set -e
      apt-get '"${APT_OPTS[*]}"' update -q
      apt-get '"${APT_OPTS[*]}"' install -y -q --no-install-recommends '"${PACKAGES[*]}"'
      apt-get clean' >>"$LOG" 2>&1 || { tail -30 "$LOG" >&2; return 1; }
  rm -f "$R/usr/sbin/policy-rc.d"
  # a booted copy: root without a password on the console, a fixed machine id, no getty noise
  chroot "$R" passwd -d root >/dev/null
  echo crsc-install-test > "$R/etc/hostname"
  chroot "$R" systemctl mask getty@tty1.service console-getty.service >/dev/null 2>&1 || true
  stamp_text > "$STAMP"
}
retry 3 build || die "building the rootfs failed (log: $LOG)"
healthy || die "the rootfs was built but does not look healthy (log: $LOG)"
say "rootfs ready: $R ($(du -sxh "$R" | cut -f1)) in $(( $(date +%s) - t0 )) s"
