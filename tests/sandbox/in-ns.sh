#!/bin/bash
# in-ns.sh CMD [ARGS...] -- run CMD inside the sandbox namespace (root = the trixie rootfs, cwd = /,
# a clean environment with a standard PATH). The exit status is CMD's.
#   tests/sandbox/in-ns.sh criu check
#   tests/sandbox/in-ns.sh env FOO=bar sh -c 'echo $FOO'
source "$(dirname "$0")/lib.sh"
[ $# -gt 0 ] || die "usage: in-ns.sh CMD [ARGS...]"
h=$(holder_pid)
[ -n "$h" ] || die "namespace is not up (run ns-up.sh)"
exec nsenter --target "$h" --mount --root --wd -- "${CLEAN_ENV[@]}" "$@"
