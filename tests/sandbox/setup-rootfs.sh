#!/bin/bash
# setup-rootfs.sh -- build (once) the Debian trixie root filesystem the crsc sandbox runs in:
# CRIU 4.x, runc, crun, podman, buildah, checkpointctl, skopeo, Debian's OCI registry,
# busybox-static, zstd, systemd + dbus (for systemd-nspawn boots), iproute2 ...
#
# Only Debian packages from the host's own mirror; the host gets debootstrap and nothing else
# (its libc is never upgraded: trixie's libraries live in the rootfs only).
# Idempotent: a stamp inside the rootfs records the package list; a second run with the same list
# only refreshes the small config files (about a second). Run as root:
#     tests/sandbox/setup-rootfs.sh            (CRSC_SANDBOX_ROOTFS=/elsewhere to move it)
source "$(dirname "$0")/lib.sh"
need_root

SUITE=trixie
# Bump STAMP_VERSION when the way packages are installed changes; editing PACKAGES re-runs apt by itself.
STAMP_VERSION=1
PACKAGES=(
  criu libcriu2 runc crun conmon catatonit podman buildah skopeo checkpointctl containers-storage
  fuse-overlayfs netavark passt slirp4netns uidmap
  docker-registry busybox-static
  iproute2 iptables nftables procps psmisc util-linux ca-certificates curl zstd tar gzip
  systemd systemd-sysv systemd-container dbus dbus-broker libpam-systemd libnss-systemd
)
APT_OPTS=(-o Acquire::Retries=5 -o Acquire::http::Timeout=60 -o Dpkg::Use-Pty=0)
STAMP_FILE=$R/etc/crsc-sandbox/rootfs.stamp
stamp_text() { printf 'crsc-sandbox rootfs v%s suite=%s\n%s\n' "$STAMP_VERSION" "$SUITE" "${PACKAGES[*]}"; }

MIRROR=$(host_mirror)
t0=$(date +%s)

# --- 1. debootstrap on the host (bookworm's 1.0.128 knows trixie) -------------------------------
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap on the host"
  retry 3 apt-get "${APT_OPTS[@]}" update -q
  # refuse anything that would replace the host's libc
  if apt-get -s install --no-install-recommends debootstrap | grep -q '^Inst libc6 '; then
    die "installing debootstrap would upgrade the host's libc6; refusing"
  fi
  retry 3 env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y -q --no-install-recommends debootstrap
fi

# --- 2. the base system -----------------------------------------------------------------------
if [ ! -e "$R/$ROOT_MARK" ]; then
  bootstrap() {
    if [ -e "$R" ]; then   # leftover of a failed attempt: start afresh, but never across a mount
      [ -z "$(findmnt -rn -R -o TARGET "$R" 2>/dev/null)" ] || die "$R has mounts below it; unmount them first"
      rm -rf "$R"
    fi
    mkdir -p "$(dirname "$R")"
    say "debootstrap $SUITE from $MIRROR into $R"
    debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$R" "$MIRROR" >"$SANDBOX_DIR/debootstrap.log" 2>&1 \
      || { tail -20 "$SANDBOX_DIR/debootstrap.log" >&2; return 1; }
  }
  mkdir -p "$SANDBOX_DIR"
  retry 3 bootstrap || die "debootstrap failed (log: $SANDBOX_DIR/debootstrap.log)"
  touch "$R/$ROOT_MARK"
fi

# --- 3. packages (only when the list changed) --------------------------------------------------
mkdir -p "$R/etc/crsc-sandbox"
if [ "$(cat "$STAMP_FILE" 2>/dev/null)" != "$(stamp_text)" ]; then
  # no init in the rootfs: maintainer scripts must not start daemons
  printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"; chmod 0755 "$R/usr/sbin/policy-rc.d"
  echo 'Acquire::Check-Valid-Until "false";' > "$R/etc/apt/apt.conf.d/99crsc-sandbox"
  echo "deb $MIRROR $SUITE main" > "$R/etc/apt/sources.list"
  cp -L /etc/resolv.conf "$R/etc/resolv.conf"
  cleanup_proc() { mountpoint -q "$R/proc" && umount "$R/proc"; return 0; }
  trap cleanup_proc EXIT
  mountpoint -q "$R/proc" || mount -t proc proc "$R/proc"
  in_chroot() { chroot "$R" "${CLEAN_ENV[@]}" DEBIAN_FRONTEND=noninteractive "$@"; }
  say "apt: installing ${#PACKAGES[@]} packages into the rootfs"
  retry 3 in_chroot apt-get "${APT_OPTS[@]}" update -q
  # download first (retried as a whole), then install from the local cache
  retry 3 in_chroot apt-get "${APT_OPTS[@]}" install -y -q --no-install-recommends --download-only "${PACKAGES[@]}"
  in_chroot apt-get "${APT_OPTS[@]}" install -y -q --no-install-recommends "${PACKAGES[@]}" >"$SANDBOX_DIR/apt-rootfs.log" 2>&1 \
    || { tail -30 "$SANDBOX_DIR/apt-rootfs.log" >&2; die "apt-get install failed (log: $SANDBOX_DIR/apt-rootfs.log)"; }
  in_chroot apt-get clean
  # the packaged registry unit would take the registry port when the rootfs is booted with nspawn
  in_chroot systemctl mask docker-registry.service >/dev/null 2>&1 || true
  cleanup_proc; trap - EXIT
  stamp_text > "$STAMP_FILE"
else
  say "rootfs packages up to date ($R)"
fi

# --- 4. small configuration files (always rewritten; cheap) ------------------------------------
# podman without systemd/journald; crun cannot run with the hybrid cgroup mount (ns-up.sh hides it)
mkdir -p "$R/etc/containers"
cat > "$R/etc/containers/containers.conf" <<'EOT'
# written by crsc tests/sandbox/setup-rootfs.sh
[containers]
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "crun"
EOT
# detach: start a program in a new session with stdio redirected and every inherited fd above 2
# closed -- CRIU refuses to dump a process holding fds it cannot resolve ("Can't lookup mount=...")
cat > "$R/usr/local/bin/detach" <<'EOT'
#!/bin/bash
# detach CMD...: run CMD in a new session, output to $DETACH_LOG (default /dev/null); prints its pid
for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done
setsid "$@" </dev/null >>"${DETACH_LOG:-/dev/null}" 2>&1 &
echo $!
EOT
chmod 0755 "$R/usr/local/bin/detach"

v=$(chroot "$R" criu --version 2>/dev/null | sed -n 's/^Version: *//p')
case "$v" in [4-9].*) ;; *) die "criu in the rootfs is '$v', need >= 4";; esac
say "rootfs ready: $R (criu $v, $(du -sxh "$R" 2>/dev/null | cut -f1)) in $(( $(date +%s) - t0 )) s"
