#!/bin/sh
# Fetches the CRI runtime.v1 api.proto from Debian trixie's golang-github-kubernetes-cri-api-dev
# and writes it, without its gogoproto import and options, to proto/api.proto next to this
# script (git-ignored), with proto/SOURCE naming the package and version it came from.
#
# The host's apt configuration is never touched: a private sources list, lists dir and cache
# live under ${XDG_CACHE_HOME:-$HOME/.cache}/crsc/apt-trixie. The mirror is the host's Debian
# mirror (from /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list), unless
# CRSC_DEBIAN_MIRROR is set. Does nothing when proto/api.proto exists (FORCE=1 refetches).
set -eu

PKG=golang-github-kubernetes-cri-api-dev
SUITE=${CRSC_CRI_SUITE:-trixie}
PROTO_IN_PKG=usr/share/gocode/src/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto

here=$(cd "$(dirname "$0")" && pwd)
out_dir="$here/proto"
out="$out_dir/api.proto"

if [ -s "$out" ] && [ -s "$out_dir/SOURCE" ] && [ "${FORCE:-0}" != 1 ]; then
    exit 0
fi

cache=${CRSC_APT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crsc/apt-$SUITE}
mkdir -p "$cache"

# one fetch at a time (parallel builds, e.g. two checkouts or test runs, may call this together)
if [ -z "${CRSC_FETCH_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
    export CRSC_FETCH_LOCKED=1
    exec flock "$cache/.lock" "$0" "$@"
fi
if [ -s "$out" ] && [ -s "$out_dir/SOURCE" ] && [ "${FORCE:-0}" != 1 ]; then
    exit 0
fi

for tool in apt-get dpkg-deb sed; do
    command -v "$tool" >/dev/null 2>&1 || { echo "fetch-cri-proto: $tool is required" >&2; exit 1; }
done

mirror=${CRSC_DEBIAN_MIRROR:-}
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list.d/debian.sources ]; then
    # first URIs: line of a stanza whose URI is the main archive (not -security)
    mirror=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources \
        | tr ' ' '\n' | grep -v -- '-security' | grep -v '^$' | head -n 1 || true)
fi
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list ]; then
    mirror=$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' /etc/apt/sources.list \
        | grep -v -- '-security' | head -n 1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}

mkdir -p "$cache/etc/sources.list.d" "$cache/etc/preferences.d" "$cache/lists/partial" \
    "$cache/cache/archives/partial" "$cache/debs"

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
signed_by=""
[ -r "$keyring" ] && signed_by=" [signed-by=$keyring]"
echo "deb$signed_by $mirror $SUITE main" > "$cache/etc/sources.list"

apt_opts() {
    # the private configuration every apt-get call here uses
    printf '%s\n' \
        "-o" "Dir::Etc::SourceList=$cache/etc/sources.list" \
        "-o" "Dir::Etc::SourceParts=$cache/etc/sources.list.d" \
        "-o" "Dir::Etc::Preferences=$cache/etc/preferences" \
        "-o" "Dir::Etc::PreferencesParts=$cache/etc/preferences.d" \
        "-o" "Dir::State::Lists=$cache/lists" \
        "-o" "Dir::State::Status=/dev/null" \
        "-o" "Dir::Cache=$cache/cache" \
        "-o" "Debug::NoLocking=1" \
        "-o" "APT::Get::List-Cleanup=0" \
        "-o" "Acquire::Retries=3" \
        "-o" "Acquire::Languages=none" \
        "-o" "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false" \
        "-o" "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false" \
        "-o" "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false" \
        "-o" "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false" \
        "-o" "APT::Sandbox::User=root" \
        "-o" "Acquire::Check-Valid-Until=false"
}

run_apt() {
    # shellcheck disable=SC2046
    set -- $(apt_opts) "$@"
    apt-get -q "$@"
}

retry() {
    n=0
    until "$@"; do
        n=$((n + 1))
        if [ "$n" -ge 4 ]; then
            echo "fetch-cri-proto: '$*' failed $n times" >&2
            return 1
        fi
        sleep $((n * 3))
    done
}

# lists are refreshed at most once a day
stamp="$cache/lists/.updated"
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440 2>/dev/null)" ] || [ "${FORCE:-0}" = 1 ]; then
    retry run_apt update >&2
    touch "$stamp"
fi

deb=$(ls "$cache/debs/${PKG}_"*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ] || ! dpkg-deb --info "$deb" >/dev/null 2>&1; then
    rm -f "$cache/debs/${PKG}_"*.deb
    (cd "$cache/debs" && retry run_apt download "$PKG" >&2)
    deb=$(ls "$cache/debs/${PKG}_"*.deb | head -n 1)
fi
version=$(dpkg-deb -f "$deb" Version)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/crsc-cri-proto.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
dpkg-deb -x "$deb" "$tmp/x"
[ -s "$tmp/x/$PROTO_IN_PKG" ] || { echo "fetch-cri-proto: $PROTO_IN_PKG missing from $deb" >&2; exit 1; }

# Grpc.Tools has no gogo.proto: drop its import and every gogoproto file option
sed -e '/^[[:space:]]*import[[:space:]]*"github.com\/gogo\/protobuf\/gogoproto\/gogo.proto";/d' \
    -e '/^[[:space:]]*option[[:space:]]*(gogoproto\./d' \
    "$tmp/x/$PROTO_IN_PKG" > "$tmp/api.proto"
if grep -q 'gogoproto' "$tmp/api.proto"; then
    echo "fetch-cri-proto: gogoproto references left after stripping:" >&2
    grep -n gogoproto "$tmp/api.proto" >&2
    exit 1
fi

mkdir -p "$out_dir"
{
    echo "package: $PKG"
    echo "version: $version"
    echo "suite: $SUITE"
    echo "mirror: $mirror"
    echo "file: /$PROTO_IN_PKG"
    echo "sha256-original: $(sha256sum "$tmp/x/$PROTO_IN_PKG" | cut -d' ' -f1)"
    echo "modified: gogoproto import and option lines removed"
} > "$tmp/SOURCE"
mv -f "$tmp/api.proto" "$out"
mv -f "$tmp/SOURCE" "$out_dir/SOURCE"
echo "fetch-cri-proto: $out from $PKG $version ($SUITE)" >&2
