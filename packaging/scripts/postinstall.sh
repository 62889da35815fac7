#!/bin/sh
# crsc postinstall: make systemd see the unit and enable it at boot, but do not start it (the node's
# runtime endpoint and kubeconfig are set in /etc/crsc/config.yaml first). An upgrade restarts a
# running daemon on the new binary and leaves the admin's enable/disable choice alone.
#   deb: configure [OLD_VERSION]     rpm: 1 (install) | 2 (upgrade)
set -e
case "$1" in
  configure) if [ -z "$2" ]; then action=install; else action=upgrade; fi ;;
  1) action=install ;;
  2) action=upgrade ;;
  *) exit 0 ;;
esac
# systemctl talks to a running systemd only when there is one (not in a chroot, not in a build root)
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
if command -v systemctl >/dev/null 2>&1; then
  if [ "$action" = install ]; then
    # works offline too: enabling only creates the WantedBy symlink
    systemctl enable crsc.service >/dev/null 2>&1 || echo "crsc: could not enable crsc.service" >&2
  elif [ -d /run/systemd/system ]; then
    systemctl try-restart crsc.service || true
  fi
fi
if [ "$action" = install ]; then
  echo "crsc installed: configure /etc/crsc/config.yaml, run 'crsc preflight', then 'systemctl start crsc'"
fi
exit 0
