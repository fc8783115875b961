#!/usr/bin/env bash
# Installs the fleet truck agent on Raspberry Pi OS Lite Bookworm (arm64), or updates it:
# Node.js 20, the `fleet` system user, /opt/fleet, /etc/fleet/agent.json (from the sample,
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
# Node.js: Debian Bookworm's own nodejs package is 18, and better-sqlite3 12 needs 20 or
# later; bookworm-backports has no nodejs. So unless /usr/bin/node is already 20+, this
# installs the official build from nodejs.org (NODE_VERSION below), checked against the
# release's SHASUMS256.txt, under /usr/local/lib/nodejs, and links /usr/bin/node to it
# (the unit runs /usr/bin/node). No third-party apt repository is added.
set -euo pipefail

NODE_VERSION=20.20.2
NODE_DIST=${NODE_DIST:-https://nodejs.org/dist}

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
  # binary matches, better-sqlite3 for the Pi's CPU during `npm ci`.
  local pkgs=(ca-certificates curl xz-utils build-essential python3)
  if ! live; then
    skip "apt-get install ${pkgs[*]}"
    return
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}

node_major() { "$1" -p 'process.versions.node.split(".")[0]'; }

install_node() {
  if ! live; then
    skip "Node.js $NODE_VERSION"
    return
  fi
  if [ -x /usr/bin/node ]; then
    local major
    major=$(node_major /usr/bin/node)
    if [ "$major" -ge 20 ]; then
      say "Node.js $(/usr/bin/node --version) already at /usr/bin/node"
      return
    fi
    die "/usr/bin/node is Node.js $major, the agent needs 20 or later: 'apt-get remove nodejs' (Debian's is 18), then run this again"
  fi
  local arch
  case $(dpkg --print-architecture) in
    arm64) arch=arm64 ;;
    amd64) arch=x64 ;;
    *) die "no Node.js $NODE_VERSION build chosen for $(dpkg --print-architecture): use Raspberry Pi OS 64-bit (arm64)" ;;
  esac
  local name="node-v$NODE_VERSION-linux-$arch"
  local tmp
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: $tmp is local and gone by the time EXIT fires
  trap "rm -rf '$tmp'" EXIT
  say "downloading $NODE_DIST/v$NODE_VERSION/$name.tar.xz"
  curl -fsSL --retry 3 -o "$tmp/$name.tar.xz" "$NODE_DIST/v$NODE_VERSION/$name.tar.xz"
  curl -fsSL --retry 3 -o "$tmp/SHASUMS256.txt" "$NODE_DIST/v$NODE_VERSION/SHASUMS256.txt"
  (cd "$tmp" && grep " $name.tar.xz\$" SHASUMS256.txt | sha256sum -c --quiet -) ||
    die "$name.tar.xz does not match the release's SHASUMS256.txt"
  mkdir -p /usr/local/lib/nodejs
  rm -rf "/usr/local/lib/nodejs/$name"
  tar -xJf "$tmp/$name.tar.xz" -C /usr/local/lib/nodejs
  ln -sfn "/usr/local/lib/nodejs/$name" /usr/local/lib/nodejs/current
  ln -sfn /usr/local/lib/nodejs/current/bin/node /usr/bin/node
  ln -sfn /usr/local/lib/nodejs/current/bin/npm /usr/local/bin/npm
  ln -sfn /usr/local/lib/nodejs/current/bin/npx /usr/local/bin/npx
  say "Node.js $(/usr/bin/node --version) installed in /usr/local/lib/nodejs/$name"
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
  # node-gyp takes the headers from the Node.js install instead of downloading them.
  local nodedir
  nodedir=$(dirname "$(dirname "$(readlink -f /usr/bin/node)")")
  if [ -f "$nodedir/include/node/node.h" ]; then export npm_config_nodedir=$nodedir; fi
  (cd "$app" && npm ci --omit=dev --no-audit --no-fund)
  # Fail here, not in the truck: the native modules load with this Node.js on this CPU.
  (cd "$app" && /usr/bin/node -e 'new (require("better-sqlite3"))(":memory:").close(); require("onoff"); require("serialport")') ||
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
