#!/usr/bin/env bash
# build-image.sh -- crsc's container image without a container engine (`make image`):
#
#   packaging/build-image.sh [BINARY] [OUT_DIR]        (defaults: bin/crsc, obj/image)
#
# 1. the files of a few Debian packages of this host's release (apt-get download, dpkg-deb -x; no
#    maintainer scripts run), cached in OUT_DIR/debs: once they are there, a build needs no network
#    and gives the same image (delete OUT_DIR/debs to take newer packages);
# 2. the few files their maintainer scripts would make (the CA bundle, /etc/passwd, ...), staged with
#    them in OUT_DIR/rootfs;
# 3. `BINARY build-image` (src/Crsc/Cli/BuildImageCommand.cs): that rootfs as one layer, BINARY as
#    /usr/bin/crsc and the crsc-interceptor beside it (the injected sidecar's command) as
#    /usr/bin/crsc-interceptor in a second, written as an OCI image layout tarball
#    OUT_DIR/crsc-VERSION.oci.tar named localhost/crsc:VERSION, every time in it SOURCE_DATE_EPOCH
#    (default: the last commit's).
#
# The packages are what the binary loads and what those need: libc6 (ldd bin/crsc: libc, libm, the
# loader) with libgcc-s1 (libc6 depends on it: glibc loads libgcc_s to unwind on thread cancellation),
# libssl3 (libssl.so.3 and libcrypto.so.3, dlopened by .NET for TLS: the API server, registries),
# libzstd1 (dlopened by crsc's store) and ca-certificates for the trust store. nfpm.yaml's depends are
# the same (libc6, libssl3, libzstd1); no ICU (invariant globalization), no Kerberos (no Negotiate auth).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-bin/crsc}
out=${2:-obj/image}
packages=(libc6 libgcc-s1 libssl3 libzstd1 ca-certificates)
umask 022
export LC_ALL=C

[ -x "$binary" ] || { echo "build-image.sh: no crsc binary at $binary (make publish)" >&2; exit 1; }
[ -x "$(dirname "$binary")/crsc-interceptor" ] || { echo "build-image.sh: no crsc-interceptor beside $binary (make publish)" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "build-image.sh: dpkg-deb is missing (a Debian host is needed)" >&2; exit 1; }
version=$("$binary" version --short)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

# 1. the packages: downloaded once per package, then taken from the cache
debs=$out/debs
mkdir -p "$debs"
missing=()
for p in "${packages[@]}"; do
  compgen -G "$debs/${p}_*.deb" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "downloading ${missing[*]} (apt-get download, this host's apt sources)"
  tmp=$(mktemp -d "$debs/.download.XXXXXX")
  # as root apt would download as _apt, which cannot write here, and say so before falling back to root
  sandbox=(); [ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)
  ok=
  for try in 1 2 3; do
    if (cd "$tmp" && apt-get download -q -o Acquire::Retries=3 "${sandbox[@]}" "${missing[@]}"); then ok=1; break; fi
    echo "apt-get download failed (try $try/3); retrying in 5 s" >&2; sleep 5
  done
  [ -n "$ok" ] || { rm -rf "$tmp"; echo "build-image.sh: could not download ${missing[*]} (apt-get update? offline?)" >&2; exit 1; }
  mv "$tmp"/*.deb "$debs"/ && rm -rf "$tmp"
fi
base_comment="Debian packages:"
for p in "${packages[@]}"; do
  deb=$(compgen -G "$debs/${p}_*.deb" | sort | tail -n1)
  base_comment+=" $p $(dpkg-deb -f "$deb" Version)"
done

# 2. the root filesystem: the packages' files (without documentation, but with each copyright file)
rootfs=$out/rootfs
rm -rf "$rootfs" && mkdir -p "$rootfs"
for p in "${packages[@]}"; do
  deb=$(compgen -G "$debs/${p}_*.deb" | sort | tail -n1)
  dpkg-deb -x "$deb" "$rootfs"
  # what the packages are, for people and scanners (distroless keeps the same)
  mkdir -p "$rootfs/var/lib/dpkg/status.d"
  dpkg-deb -f "$deb" > "$rootfs/var/lib/dpkg/status.d/$p"
done
find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
find "$rootfs/usr/share/doc" -type l -delete
rm -rf "$rootfs/usr/share/man" "$rootfs/usr/share/lintian" "$rootfs/usr/share/info"
find "$rootfs/usr/share" -depth -type d -empty -delete
# what update-ca-certificates would write: every certificate of the package, in one bundle; OpenSSL's
# default paths (OPENSSLDIR /usr/lib/ssl, as the openssl package links them) lead to it
mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/usr/lib/ssl"
find "$rootfs/usr/share/ca-certificates" -name '*.crt' -printf '%P\n' | sort | while read -r crt; do
  f=$rootfs/usr/share/ca-certificates/$crt
  cat "$f"; [ -z "$(tail -c1 "$f")" ] || echo
done > "$rootfs/etc/ssl/certs/ca-certificates.crt"
ln -s /etc/ssl/certs "$rootfs/usr/lib/ssl/certs"
ln -s /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/lib/ssl/cert.pem"
# root: the one user (the daemon runs as root), with a home; hosts before DNS
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\n' > "$rootfs/etc/group"
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' > "$rootfs/etc/nsswitch.conf"
mkdir -p -m 0700 "$rootfs/root"
mkdir -p -m 1777 "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"

# 3. the image
"$binary" build-image --rootfs "$rootfs" --tag "$version" \
  --base-comment "$base_comment" --output "$out/crsc-$version.oci.tar"
