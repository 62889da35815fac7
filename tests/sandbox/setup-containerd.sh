#!/bin/bash
# setup-containerd.sh -- add a CRI runtime that can checkpoint to the sandbox rootfs:
# containerd 2.1+ and criu 4.2.x from Debian sid (ONLY these come from sid, by apt pinning), with
# runc from trixie, the CNI plugins, and the configuration files next to this script. Ends with
# check-criu.sh: a dump of a trivial process must finish in seconds on this machine's CPU.
# Needs setup-rootfs.sh; brings the namespace up (ns-up.sh) if it is not. Idempotent: apt runs
# only when the package set changed (stamp in the rootfs); configs are always rewritten.
source "$(dirname "$0")/lib.sh"
need_root
[ -e "$R/$ROOT_MARK" ] || die "no rootfs at $R (run setup-rootfs.sh)"
"$SANDBOX_SCRIPTS/ns-up.sh" >/dev/null

STAMP_VERSION=2
# criu from sid (with the libraries 4.2 needs: libcompel1, libnet9, libnl-3-200): trixie's 4.1.1 hangs in every dump
# on some CPUs (AMD, AVX-512); 4.2.x does not. Nothing else comes from sid (no libc).
SID_PACKAGES=(containerd criu libcriu2 libcompel1 libnet9 libnl-3-200)
PACKAGES=(containernetworking-plugins)
APT_OPTS=(-o Acquire::Retries=5 -o Acquire::http::Timeout=60 -o Dpkg::Use-Pty=0)
STAMP_FILE=$R/etc/crsc-sandbox/containerd.stamp
stamp_text() { printf 'crsc-sandbox containerd v%s\nsid: %s\ntrixie: %s\n' "$STAMP_VERSION" "${SID_PACKAGES[*]}" "${PACKAGES[*]}"; }
MIRROR=$(host_mirror)
t0=$(date +%s)

if [ "$(cat "$STAMP_FILE" 2>/dev/null)" != "$(stamp_text)" ] || [ ! -x "$R/usr/bin/containerd" ]; then
  # sid is known to apt but never used (priority -1), except for the packages pinned to it
  echo "deb $MIRROR sid main" > "$R/etc/apt/sources.list.d/crsc-sid.list"
  {
    echo "# written by crsc tests/sandbox/setup-containerd.sh: only these packages come from sid"
    printf 'Package: *\nPin: release n=sid\nPin-Priority: -1\n\n'
    printf 'Package: %s\nPin: release n=sid\nPin-Priority: 990\n' "${SID_PACKAGES[*]}"
  } > "$R/etc/apt/preferences.d/crsc-sid"
  # the mirror's sid Release file can look expired to this machine's clock
  echo 'Acquire::Check-Valid-Until "false";' > "$R/etc/apt/apt.conf.d/99crsc-sid-valid-until"
  cp -L /etc/resolv.conf "$R/etc/resolv.conf"
  say "apt: ${SID_PACKAGES[*]} (sid) and ${PACKAGES[*]} (trixie)"
  apt_ns() { in_ns env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" "$@"; }
  retry 3 apt_ns update -q
  retry 3 apt_ns install -y -q --no-install-recommends --download-only "${SID_PACKAGES[@]}" "${PACKAGES[@]}"
  apt_ns install -y -q --no-install-recommends "${SID_PACKAGES[@]}" "${PACKAGES[@]}" >"$SANDBOX_DIR/apt-containerd.log" 2>&1 \
    || { tail -30 "$SANDBOX_DIR/apt-containerd.log" >&2; die "apt-get install failed (log: $SANDBOX_DIR/apt-containerd.log)"; }
  apt_ns clean
  # a systemd-nspawn boot of the rootfs must not start the packaged containerd
  in_ns systemctl mask containerd.service >/dev/null 2>&1 || true
  stamp_text > "$STAMP_FILE"
else
  say "containerd packages up to date"
fi

# configuration (placeholders: @RUN_DIR@, @REGISTRY@)
subst() { sed -e "s|@RUN_DIR@|$RUN_DIR|g" -e "s|@REGISTRY@|$REGISTRY|g" "$1"; }
C=$R/etc/crsc-sandbox/containerd
mkdir -p "$C/cni/net.d" "$C/certs.d/$REGISTRY"
subst "$SANDBOX_SCRIPTS/containerd.toml" > "$C/config.toml"
subst "$SANDBOX_SCRIPTS/registry-hosts.toml" > "$C/certs.d/$REGISTRY/hosts.toml"
# crsc's embedded image endpoints (the daemon's images.listen; plain HTTP on loopback): containerd may pull
# checkpoint images from them (5055: the default; 5056: the E2E tests' daemons). CRSC_SANDBOX_IMAGE_ENDPOINTS: space-separated host:port list.
for endpoint in ${CRSC_SANDBOX_IMAGE_ENDPOINTS:-127.0.0.1:5055 127.0.0.1:5056}; do
  mkdir -p "$C/certs.d/$endpoint"
  sed -e "s|@REGISTRY@|$endpoint|g" -e 's|"pull", "resolve", "push"|"pull", "resolve"|' \
    "$SANDBOX_SCRIPTS/registry-hosts.toml" > "$C/certs.d/$endpoint/hosts.toml"
done
subst "$SANDBOX_SCRIPTS/registry.yml" > "$R/etc/crsc-sandbox/registry.yml"
# pods with their own network: a bridge with a private subnet, no gateway, no routes, no
# masquerading -- traffic stays between the pods on this machine
install -m 0644 "$SANDBOX_SCRIPTS/10-crsc-sandbox.conflist" "$C/cni/net.d/10-crsc-sandbox.conflist"

v=$(in_ns containerd --version | awk '{print $3}')
case "${v#v}" in 2.[1-9]*|[3-9].*) ;; *) die "containerd in the rootfs is '$v', need >= 2.1";; esac
cv=$(in_ns criu --version | sed -n 's/^Version: *//p')
case "$cv" in 4.[2-9]*|[5-9].*) ;; *) die "criu in the rootfs is '$cv', need >= 4.2 (from sid; trixie's 4.1.1 hangs in dumps on some CPUs)";; esac
"$SANDBOX_SCRIPTS/check-criu.sh"
say "containerd $v, $(in_ns runc --version | head -1), criu $cv ready in $(( $(date +%s) - t0 )) s"
