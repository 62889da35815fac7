#!/bin/sh
# crsc postremove: removal keeps the checkpoints and state in /var/lib/crsc and the configuration;
# purge (deb) deletes them. rpm has no purge: erase keeps them (rm -rf /var/lib/crsc by hand).
#   deb: remove | purge | upgrade | disappear | abort-*     rpm: 0 (erase) | 1 (upgrade)
set -e
case "$1" in
  remove|0)
    if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
    ;;
  purge)
    if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
    # the store (archives hold process memory), node state and outbox, configuration, runtime dir
    rm -rf /var/lib/crsc /etc/crsc /run/crsc
    ;;
esac
exit 0
