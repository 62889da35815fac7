#!/bin/sh
# crsc preremove: on removal stop the daemon and disable it; on upgrade leave it running (postinstall
# of the new version restarts it).
#   deb: remove | upgrade NEW_VERSION | deconfigure | failed-upgrade     rpm: 0 (erase) | 1 (upgrade)
set -e
case "$1" in
  remove|deconfigure|0)
    if [ -d /run/systemd/system ]; then systemctl stop crsc.service || true; fi
    if command -v systemctl >/dev/null 2>&1; then systemctl disable crsc.service >/dev/null 2>&1 || true; fi
    ;;
esac
exit 0
