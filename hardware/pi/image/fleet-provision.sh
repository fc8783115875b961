#!/bin/sh
# Applies what the installer left on the boot partition, at boot, before the agent starts
# (fleet-provision.service):
#
#   /boot/firmware/fleet/agent.json   the agent's config (docs/DEVICE-GUIDE.md, section 3)
#   /boot/firmware/fleet/*.pem|*.crt|*.key   certificates it names as /etc/fleet/tls/<file>
#
# The certificates go to /etc/fleet/tls and the config, once the agent has checked it, to
# /etc/fleet/agent.json; then both are removed from the boot partition (anyone holding the
# card could read them there) and fleet/APPLIED.txt says what was applied. A config the agent
# refuses stays where it is, renamed agent.json.rejected, with the reason in
# fleet/REJECTED.txt; the agent keeps its previous config.
#
# On the first boot it also grows the root partition to the end of the card.
set -u

BOOT=/boot/firmware/fleet
NODE=/usr/local/lib/nodejs/fleet/bin/node
FLEET=/opt/fleet/dist/bin/fleet.js
STATE=/var/lib/fleet-provision

say() { echo "fleet-provision: $*"; }

grow_root() {
  [ -e "$STATE/grow-root" ] || return 0
  dev=$(findmnt -n -o SOURCE /)
  # /sys/class/block/mmcblk0p2 -> .../mmcblk0/mmcblk0p2: the disk is the parent directory.
  disk=/dev/$(basename "$(dirname "$(readlink -f "/sys/class/block/${dev#/dev/}")")")
  part=$(cat "/sys/class/block/${dev#/dev/}/partition" 2>/dev/null || echo "")
  if [ ! -b "$disk" ] || [ -z "$part" ]; then
    say "root $dev: disk or partition number not found, not growing it"
  elif echo ', +' | sfdisk --quiet --no-reread --no-tell-kernel -N "$part" "$disk" &&
    partx -u -n "$part" "$disk" && resize2fs "$dev" >/dev/null 2>&1; then
    say "root partition $dev grown to the end of $disk"
  else
    say "root partition $dev could not be grown; it keeps its size"
  fi
  rm -f "$STATE/grow-root"
}

# Written to a new name, flushed, then renamed: a power cut leaves the old file or the new.
put() { # SRC DEST MODE
  tmp="$2.new"
  install -m "$3" -o root -g fleet "$1" "$tmp" && sync "$tmp" && mv -f "$tmp" "$2"
}

apply_config() {
  [ -f "$BOOT/agent.json" ] || return 0
  install -d -m 0750 -o root -g fleet /etc/fleet/tls
  for f in "$BOOT"/*.pem "$BOOT"/*.crt "$BOOT"/*.key; do
    [ -f "$f" ] || continue
    put "$f" "/etc/fleet/tls/$(basename "$f")" 0640 || return 1
    say "installed /etc/fleet/tls/$(basename "$f")"
  done
  if ! reason=$("$NODE" "$FLEET" agent --config "$BOOT/agent.json" --check-config 2>&1); then
    say "the config on the boot partition is refused: $reason"
    printf '%s\n%s\n' "$(date -u +%FT%TZ) fleet/agent.json refused, the agent keeps its previous config:" "$reason" >"$BOOT/REJECTED.txt"
    mv -f "$BOOT/agent.json" "$BOOT/agent.json.rejected"
    sync
    return 0
  fi
  put "$BOOT/agent.json" /etc/fleet/agent.json 0640 || return 1
  vehicle=$("$NODE" -p 'JSON.parse(require("fs").readFileSync("/etc/fleet/agent.json", "utf8")).vehicle')
  host=$(printf 'fleet-%s' "$vehicle" | tr 'A-Z_' 'a-z-' | cut -c1-63)
  echo "$host" >/etc/hostname
  echo "$host" >/proc/sys/kernel/hostname
  sed -i "s/^127\.0\.1\.1\t.*/127.0.1.1\t$host/" /etc/hosts
  rm -f "$BOOT/agent.json" "$BOOT"/*.pem "$BOOT"/*.crt "$BOOT"/*.key "$BOOT/REJECTED.txt"
  printf '%s applied for vehicle %s: /etc/fleet/agent.json and /etc/fleet/tls\n' "$(date -u +%FT%TZ)" "$vehicle" >"$BOOT/APPLIED.txt"
  sync
  say "config applied for vehicle $vehicle (hostname $host)"
}

grow_root
apply_config
