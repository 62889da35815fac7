#!/usr/bin/env bash
# Debian packages the build and the tests need on the host. Idempotent; retries downloads.
# The real-component sandbox (tests/sandbox) installs its own trixie/sid packages inside its rootfs.
set -euo pipefail
# docker-registry, skopeo, apache2-utils (htpasswd): the registry push round trip on the host (tests/Crsc.E2E.Tests/Registry)
# rpm (rpmbuild, rpm -qp), cpio (reading files out of the .rpm), systemd-container (systemd-nspawn), python3 (packaging/build-packages.py): make package and the
# package install tests (tests/Crsc.E2E.Tests/Packaging)
need=(zstd libzstd1 debootstrap ca-certificates git make util-linux iproute2 procps docker-registry skopeo apache2-utils
      rpm cpio systemd-container python3)
# Debian's docker-registry package enables a service on :5000; the tests start their own registries on free ports,
# and 127.0.0.1:5000 is the sandbox's registry, so the host's service is stopped and disabled.
quiet_registry() {
  if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled docker-registry >/dev/null 2>&1; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
}
missing=()
for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && { quiet_registry; echo "host packages present"; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "missing packages (${missing[*]}); run as root: make deps" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
for try in 1 2 3 4 5; do
  if apt-get update -q -o Acquire::Retries=5 && apt-get install -y -q -o Acquire::Retries=5 --no-install-recommends "${missing[@]}"; then
    quiet_registry; exit 0
  fi
  echo "apt failed (try $try), retrying in $((try * 5)) s" >&2; sleep $((try * 5))
done
exit 1
