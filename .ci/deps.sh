#!/usr/bin/env bash
# Debian packages the build and the tests need on the host. Idempotent; retries downloads.
# The real-component sandbox (tests/sandbox) installs its own trixie/sid packages inside its rootfs.
set -euo pipefail
need=(zstd libzstd1 debootstrap ca-certificates git make util-linux iproute2 procps)
missing=()
for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && { echo "host packages present"; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "missing packages (${missing[*]}); run as root: make deps" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
for try in 1 2 3 4 5; do
  if apt-get update -q -o Acquire::Retries=5 && apt-get install -y -q -o Acquire::Retries=5 --no-install-recommends "${missing[@]}"; then
    exit 0
  fi
  echo "apt failed (try $try), retrying in $((try * 5)) s" >&2; sleep $((try * 5))
done
exit 1
