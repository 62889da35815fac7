#!/bin/bash
# start-containerd.sh -- start the sandbox's services inside its namespace (ns-up.sh is run first):
#   1. Debian's docker-registry on $CRSC_SANDBOX_REGISTRY (127.0.0.1:5000, loopback, no auth)
#   2. two images built from busybox-static with buildah and pushed there once (nothing is pulled
#      from any other registry):  <registry>/crsc-sandbox/busybox:1  (entrypoint /bin/sh)
#                                 <registry>/crsc-sandbox/pause:1    (pod sandbox: sleep infinity)
#   3. containerd with /etc/crsc-sandbox/containerd/config.toml; CRI socket
#      /run/crsc-sandbox/containerd.sock -- the same path on the host and inside the namespace
# Host pids in /run/crsc-sandbox/{registry,containerd}.pid; logs in the rootfs under
# /var/log/crsc-sandbox-{registry,containerd}.log. Idempotent: what already runs is left alone.
source "$(dirname "$0")/lib.sh"
need_root
[ -f "$R/etc/crsc-sandbox/containerd/config.toml" ] || die "run setup-containerd.sh first"
take_lock
"$SANDBOX_SCRIPTS/ns-up.sh" >/dev/null
t0=$(date +%s.%N)

# 1. registry
if ! pid_is "$REGISTRY_PIDFILE" docker-registry; then
  if in_ns ss -Hltn "sport = :${REGISTRY##*:}" | grep -q .; then
    die "port ${REGISTRY##*:} is taken by another program; set CRSC_SANDBOX_REGISTRY (and re-run setup-containerd.sh)"
  fi
  in_ns env DETACH_LOG=/var/log/crsc-sandbox-registry.log detach \
    docker-registry serve /etc/crsc-sandbox/registry.yml > "$REGISTRY_PIDFILE"
  say "registry started (pid $(cat "$REGISTRY_PIDFILE")) on $REGISTRY"
fi
for i in $(seq 1 100); do
  in_ns curl -fsS -o /dev/null "http://$REGISTRY/v2/" 2>/dev/null && break
  pid_alive "$REGISTRY_PIDFILE" || die "registry exited; see $R/var/log/crsc-sandbox-registry.log"
  [ "$i" = 100 ] && die "registry does not answer on $REGISTRY"
  sleep 0.1
done

# 2. images
has_image() { # REPO TAG
  in_ns curl -fsS -o /dev/null \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/$1/manifests/$2" 2>/dev/null
}
build_image() { # NAME:TAG ENTRYPOINT_JSON -- a busybox-static root with relative applet links
  in_ns bash -euo pipefail -c '
    ref=$1; entry=$2
    c=$(buildah from scratch); m=$(buildah mount "$c")
    mkdir -p "$m/bin" "$m/etc" "$m/proc" "$m/sys" "$m/dev" "$m/tmp" "$m/data"; chmod 1777 "$m/tmp"
    cp /bin/busybox "$m/bin/busybox"
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$m/bin/$a"; done
    echo "root:x:0:0:root:/:/bin/sh" > "$m/etc/passwd"; echo "root:x:0:" > "$m/etc/group"
    buildah umount "$c" >/dev/null
    buildah config --entrypoint "$entry" --env PATH=/bin --workingdir / "$c"
    buildah commit -q "$c" "$ref" >/dev/null
    buildah push -q --tls-verify=false "$ref"
    buildah rm "$c" >/dev/null; buildah rmi "$ref" >/dev/null
  ' build-image "$1" "$2"
  say "built and pushed $1"
}
has_image crsc-sandbox/busybox 1 || build_image "$BUSYBOX_IMAGE" '["/bin/sh"]'
has_image crsc-sandbox/pause 1 || build_image "$PAUSE_IMAGE" '["/bin/sleep","infinity"]'

# 3. containerd
if ! pid_is "$CONTAINERD_PIDFILE" containerd; then
  rm -f "$CONTAINERD_SOCK" "$CONTAINERD_SOCK.ttrpc"
  in_ns env DETACH_LOG=/var/log/crsc-sandbox-containerd.log detach \
    containerd --config /etc/crsc-sandbox/containerd/config.toml > "$CONTAINERD_PIDFILE"
  say "containerd started (pid $(cat "$CONTAINERD_PIDFILE"))"
fi
for i in $(seq 1 300); do
  in_ns ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1 && break
  pid_alive "$CONTAINERD_PIDFILE" || { tail -20 "$R/var/log/crsc-sandbox-containerd.log" >&2; die "containerd exited; log: $R/var/log/crsc-sandbox-containerd.log"; }
  [ "$i" = 300 ] && die "containerd does not answer on $CONTAINERD_SOCK"
  sleep 0.1
done
# the CRI plugin must have loaded (it fails alone, e.g. on a bad config section)
in_ns ctr --address "$CONTAINERD_SOCK" plugins ls | grep -E '^io\.containerd\.grpc\.v1 +cri +' | grep -q ' ok' \
  || die "containerd's CRI plugin did not load; log: $R/var/log/crsc-sandbox-containerd.log"
# ... and finished starting: until it has recovered its state it answers every CRI call UNAVAILABLE "server is not
# initialized yet" (a test that ran in that moment failed). CRI Version over HTTP/2 with curl: a VersionRequest
# {version: "v1"} in one gRPC frame; an answer that names the runtime means it is up.
for i in $(seq 1 300); do
  in_ns sh -c 'printf "\000\000\000\000\004\012\002v1" | curl -s --max-time 2 --unix-socket "$1" --http2-prior-knowledge \
      -H "content-type: application/grpc" -H "te: trailers" --data-binary @- http://localhost/runtime.v1.RuntimeService/Version' \
      cri-version "$CONTAINERD_SOCK" 2>/dev/null | grep -aq containerd && break
  [ "$i" = 300 ] && die "containerd's CRI does not answer Version on $CONTAINERD_SOCK; log: $R/var/log/crsc-sandbox-containerd.log"
  sleep 0.1
done
say "up in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s: CRI unix://$CONTAINERD_SOCK," \
    "registry $REGISTRY, images $BUSYBOX_IMAGE $PAUSE_IMAGE," \
    "pids: holder $(holder_pid) registry $(cat "$REGISTRY_PIDFILE") containerd $(cat "$CONTAINERD_PIDFILE")"
