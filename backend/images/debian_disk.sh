#!/usr/bin/env bash
# Build a small UEFI-bootable Debian 12 (bookworm) "cloud image" with cloud-init, from Debian
# packages only: like Debian's genericcloud image, but made locally (no cloud image can be
# downloaded everywhere). No loop devices and no mounts: every piece is built from files.
#
#   debian_disk.sh OUT.qcow2 [cloud|docker] [x86_64|aarch64]
#
# The arch (default x86_64; also the ARCH environment variable) is the guest's: an aarch64 image
# is debootstrapped from Debian's arm64 packages, whose maintainer scripts run on this host
# through its qemu-aarch64 binfmt handler (flag F, registered by qemu-user-static), and it boots
# on QEMU's virt machine with the aarch64 UEFI firmware (AAVMF).
#
# Variants: 'cloud' (the default) is the plain image; 'docker' adds dockerd (docker.io, with
# containerd and runc), socat (the agent's socket forwards) and qemu-user-static for the common
# foreign arches, whose binfmt handlers (flags OPF: F opens the interpreter at registration, so
# containers of another arch run) systemd-binfmt registers at every boot. envdeck runs this from
# envdeck.backend.images.docker_vm, which caches the result by the hash of this file and the
# variant; every '==> ' line on stderr is a progress step.
#
# 1. rootfs: debootstrap --variant=minbase + cloud-init, openssh-server, linux-image-ARCH (the
#    generic kernel: Debian's cloud kernels are built without 9p, which mounts: need)...
# 2. root.img: mkfs.ext4 -L cloudroot -d ROOTFS (used space + ~300 MiB)
# 3. esp.img: FAT, 64 MiB (128 on aarch64: its kernel is stored uncompressed), systemd-boot
#    (x86_64: the host package systemd-boot-efi; aarch64: systemd-boot-efi:arm64, installed in
#    the guest's root filesystem) + kernel + initrd
# 4. disk.raw: GPT (sfdisk) with the ESP then the root partition, images written with dd,
#    converted to OUT.qcow2 (atomically: built in a temp dir next to OUT, renamed at the end).
#
# The guest boots with root=LABEL=cloudroot on the serial console (console=ttyS0 on x86_64,
# the PL011 ttyAMA0 on aarch64; no `quiet`).
# cloud-init (NoCloud seed, volume label cidata) writes the SSH host keys: the image has none.
# The ESP is not mounted in the guest: a kernel upgrade inside the guest does not reach it.
#
# Needs root. Host packages: debootstrap e2fsprogs dosfstools mtools fdisk systemd-boot-efi
# qemu-utils; for aarch64 also the qemu-aarch64 binfmt handler with flag F (qemu-user-static)
# and arm64 enabled for apt (see .ci/setup.d/40-cloud-image.sh, 20-emulation.sh, 25-aarch64.sh).
set -euo pipefail

SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ESP_MIB=64
ROOT_MARGIN_MIB=300
ROOT_LABEL=cloudroot
KERNEL_OPTIONS=""
SERIAL=ttyS0
SYSTEMD_BOOT=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
# Besides minbase. python3-cffi-backend: python3-cryptography (cloud-init -> python3-oauthlib)
# depends on the virtual python3-cffi-backend-api-min/max, which debootstrap cannot resolve.
PACKAGES=(
  cloud-init python3-cffi-backend cloud-guest-utils
  linux-image-amd64 initramfs-tools
  systemd-sysv udev dbus libpam-systemd
  openssh-server sudo
  ifupdown isc-dhcp-client netbase iproute2
)
# The docker variant: dockerd and what it needs (iptables, containerd, runc and tini come as
# dependencies; recommends are never installed by debootstrap), socat, qemu-user-static.
DOCKER_PACKAGES=(docker.io ca-certificates socat qemu-user-static)
# The arches whose qemu-user-static binaries stay (Docker's platforms besides amd64 and 386, as
# tonistiigi/binfmt installs them); the other targets' ~250 MiB are removed.
DOCKER_EMULATED=(aarch64 arm riscv64 ppc64le s390x mips64el)
# The same for an aarch64 guest: amd64 and 386 are the foreign ones there (arm runs natively).
DOCKER_EMULATED_ON_AARCH64=(x86_64 i386 riscv64 ppc64le s390x mips64el)

step() { printf '==> %s\n' "$*" >&2; }
die() { printf 'debian_disk: %s\n' "$1" >&2; exit "${2:-1}"; }

[ $# -ge 1 ] && [ $# -le 3 ] && [ -n "$1" ] ||
  die "usage: $0 OUT.qcow2 [cloud|docker] [x86_64|aarch64]" 2
VARIANT="${2:-cloud}"
GUEST_ARCH="${3:-${ARCH:-x86_64}}"
case "$GUEST_ARCH" in
  x86_64) DEB_ARCH=amd64 ;;
  aarch64)
    DEB_ARCH=arm64
    ESP_MIB=128
    SERIAL=ttyAMA0
    SYSTEMD_BOOT=""  # taken from the guest's own systemd-boot-efi:arm64
    PACKAGES=("${PACKAGES[@]/linux-image-amd64/linux-image-arm64}" systemd-boot-efi)
    DOCKER_EMULATED=("${DOCKER_EMULATED_ON_AARCH64[@]}")
    ;;
  *) die "unknown arch '$GUEST_ARCH' (x86_64 or aarch64)" 2 ;;
esac
case "$VARIANT" in
  cloud) ;;
  docker)
    PACKAGES+=("${DOCKER_PACKAGES[@]}")
    # No AppArmor userland in the image: with the kernel's AppArmor on, dockerd would refuse to
    # run containers (it cannot load its docker-default profile without apparmor_parser).
    KERNEL_OPTIONS=" apparmor=0"
    ;;
  *) die "unknown variant '$VARIANT' (cloud or docker)" 2 ;;
esac
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it)" 2
export PATH="$PATH:/usr/sbin:/sbin"

missing=()
need() {  # need TOOL PACKAGE
  command -v "$1" >/dev/null 2>&1 || missing+=("$1 (package $2)")
}
need debootstrap debootstrap
need chroot coreutils
need mkfs.ext4 e2fsprogs
need mkfs.vfat dosfstools
need mmd mtools
need mcopy mtools
need sfdisk fdisk
need qemu-img qemu-utils
[ -z "$SYSTEMD_BOOT" ] || [ -r "$SYSTEMD_BOOT" ] ||
  missing+=("$SYSTEMD_BOOT (package systemd-boot-efi)")
if [ "$DEB_ARCH" = arm64 ] && [ "$(dpkg --print-architecture 2>/dev/null)" != arm64 ]; then
  # debootstrap runs the arm64 packages' scripts in the chroot: the kernel must hand arm64
  # programs to qemu-aarch64 itself (flag F: the interpreter is opened at registration, so it
  # need not exist inside the chroot).
  handler=/proc/sys/fs/binfmt_misc/qemu-aarch64
  if ! grep -q '^enabled' "$handler" 2>/dev/null || ! grep -q '^flags:.*F' "$handler"; then
    missing+=("the qemu-aarch64 binfmt handler with flag F (package qemu-user-static)")
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  printf 'debian_disk: missing: %s\n' "${missing[@]}" >&2
  extra=""
  [ "$DEB_ARCH" = arm64 ] && extra=" qemu-user-static binfmt-support"
  die "install them with: apt-get install debootstrap e2fsprogs dosfstools mtools fdisk systemd-boot-efi qemu-utils$extra" 2
fi

OUT="$1"
OUT_DIR="$(cd "$(dirname "$OUT")" && pwd)" || die "no directory for $OUT" 2
OUT="$OUT_DIR/$(basename "$OUT")"
WORK="$(mktemp -d "$OUT_DIR/.build-cloud-image.XXXXXX")"
ROOTFS="$WORK/rootfs"
DEBOOTSTRAP_PID=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$DEBOOTSTRAP_PID" ] && kill -0 "$DEBOOTSTRAP_PID" 2>/dev/null; then
    kill -TERM -- "-$DEBOOTSTRAP_PID" 2>/dev/null || kill -TERM "$DEBOOTSTRAP_PID" 2>/dev/null || true
    wait "$DEBOOTSTRAP_PID" 2>/dev/null || true
  fi
  # debootstrap mounts /proc and /sys inside the target while it installs; if it was killed they
  # may still be there: unmount (deepest first) before deleting, and never cross filesystems.
  if [ -d "$ROOTFS" ]; then
    awk -v root="$ROOTFS/" 'index($2, root) == 1 { print $2 }' /proc/self/mounts | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  rm -rf --one-file-system "$WORK" || printf 'debian_disk: could not remove %s\n' "$WORK" >&2
  [ "$rc" -eq 0 ] || printf 'debian_disk: failed (exit %s)\n' "$rc" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

START=$SECONDS

# --- 1. root filesystem -------------------------------------------------------------------------
step "debootstrap $SUITE $DEB_ARCH (minbase + cloud-init, kernel, ssh; variant $VARIANT) from $MIRROR"
# In the background, in its own process group, so that a signal to this script stops it (and the
# dpkg it runs in the chroot) at once instead of after the whole bootstrap.
setsid -w debootstrap --arch="$DEB_ARCH" --variant=minbase \
  --include="$(IFS=,; echo "${PACKAGES[*]}")" \
  "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 </dev/null &
DEBOOTSTRAP_PID=$!
if ! wait "$DEBOOTSTRAP_PID"; then
  DEBOOTSTRAP_PID=""
  tail -n 30 "$WORK/debootstrap.log" >&2
  [ -f "$ROOTFS/debootstrap/debootstrap.log" ] && tail -n 30 "$ROOTFS/debootstrap/debootstrap.log" >&2
  die "debootstrap failed"
fi
DEBOOTSTRAP_PID=""
step "debootstrap done in $((SECONDS - START)) s"

step "configuring the root filesystem"
cat >"$ROOTFS/etc/fstab" <<EOF
# <file system>        <mount point> <type> <options>                  <dump> <pass>
LABEL=$ROOT_LABEL       /             ext4   rw,discard,errors=remount-ro 0      1
EOF
cat >"$ROOTFS/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
# Per-instance identity comes at first boot: hostname from cloud-init, machine-id from systemd,
# resolv.conf from dhclient, SSH host keys from the cloud-init seed (or ssh_genkeytypes).
echo localhost >"$ROOTFS/etc/hostname"
rm -f "$ROOTFS/etc/resolv.conf"
: >"$ROOTFS/etc/machine-id"
rm -f "$ROOTFS/var/lib/dbus/machine-id"
ln -s /etc/machine-id "$ROOTFS/var/lib/dbus/machine-id"
rm -f "$ROOTFS"/etc/ssh/ssh_host_*
# envdeck carries each connection of a socket forward (the docker socket) in an SSH session of
# its own, besides its polls of the guest: OpenSSH's 10 sessions per connection are too few (the
# 11th connection would be closed at once).
echo "MaxSessions 256" >"$ROOTFS/etc/ssh/sshd_config.d/50-envdeck.conf"
# No passwords: root stays locked ('*'); logins are by the SSH keys cloud-init installs.
chroot "$ROOTFS" passwd -l root >/dev/null 2>&1 || true

# cloud-init: the image is booted with a NoCloud seed (or nothing): skip probing other clouds.
# Its locale module defaults to en_US.UTF-8, which minbase has not generated (and Debian's
# locale-gen ignores the name it is given): update-locale fails, and cloud-config.service with
# it. C.UTF-8 is built into glibc: nothing to generate.
cat >"$ROOTFS/etc/cloud/cloud.cfg.d/90-envdeck.cfg" <<'EOF'
# Built by envdeck's debian_disk.sh: seeded with NoCloud (label cidata).
datasource_list: [NoCloud, None]
locale: C.UTF-8
EOF
echo LANG=C.UTF-8 >"$ROOTFS/etc/default/locale"

if [ "$VARIANT" = docker ]; then
  step "docker: keeping qemu-user-static for ${DOCKER_EMULATED[*]}"
  keep=" ${DOCKER_EMULATED[*]} "
  for bin in "$ROOTFS"/usr/bin/qemu-*-static; do
    arch="${bin##*/qemu-}"
    arch="${arch%-static}"
    [[ "$keep" == *" $arch "* ]] && continue
    rm -f "$bin" "$ROOTFS/usr/lib/binfmt.d/qemu-$arch.conf" \
      "$ROOTFS/usr/libexec/qemu-binfmt/$arch-binfmt-P"
  done
  for arch in "${DOCKER_EMULATED[@]}"; do
    [ -x "$ROOTFS/usr/bin/qemu-$arch-static" ] || die "qemu-user-static has no qemu-$arch-static"
    grep -q ':[A-Z]*F[A-Z]*$' "$ROOTFS/usr/lib/binfmt.d/qemu-$arch.conf" ||
      die "the binfmt handler of qemu-$arch has no F flag"
  done
  # dockerd and containerd start at boot (the packages enabled them); the instance's readiness
  # waits for 'docker version' to answer.
  [ -e "$ROOTFS/etc/systemd/system/multi-user.target.wants/docker.service" ] ||
    chroot "$ROOTFS" systemctl enable docker.service containerd.service >&2
fi

if ! ls "$ROOTFS"/boot/initrd.img-* >/dev/null 2>&1; then
  step "generating the initramfs"
  chroot "$ROOTFS" update-initramfs -c -k all >&2
fi
KERNEL="$(ls "$ROOTFS"/boot/vmlinuz-* | sort -V | tail -n1)"
INITRD="$ROOTFS/boot/initrd.img-${KERNEL##*/vmlinuz-}"
[ -f "$KERNEL" ] && [ -f "$INITRD" ] || die "no kernel/initramfs in $ROOTFS/boot"
if [ "$DEB_ARCH" = arm64 ]; then
  # Debian's arm64 vmlinuz is a gzip of the kernel Image; the Image itself is the EFI program
  # (EFI stub) systemd-boot starts, so the ESP gets it uncompressed.
  SYSTEMD_BOOT="$ROOTFS/usr/lib/systemd/boot/efi/systemd-bootaa64.efi"
  [ -r "$SYSTEMD_BOOT" ] || die "systemd-boot-efi:arm64 has no systemd-bootaa64.efi"
  if gzip -t "$KERNEL" 2>/dev/null; then
    gzip -dc "$KERNEL" >"$WORK/Image"
    KERNEL="$WORK/Image"
  fi
fi

chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/debootstrap
rm -rf "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/* "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/*
find "$ROOTFS/var/cache/debconf" -name '*-old' -delete

# --- 2. root partition image --------------------------------------------------------------------
USED_MIB="$(du -sx --block-size=1M "$ROOTFS" | cut -f1)"
ROOT_MIB=$((USED_MIB + ROOT_MARGIN_MIB))
step "root filesystem: ${USED_MIB} MiB used -> ext4 '$ROOT_LABEL' of ${ROOT_MIB} MiB"
mkfs.ext4 -q -F -L "$ROOT_LABEL" -m 1 -d "$ROOTFS" "$WORK/root.img" "${ROOT_MIB}M" >/dev/null

# --- 3. EFI system partition --------------------------------------------------------------------
step "ESP: FAT ${ESP_MIB} MiB, systemd-boot + $(basename "$KERNEL")"
export MTOOLS_SKIP_CHECK=1
mkfs.vfat -C -n EFI "$WORK/esp.img" $((ESP_MIB * 1024)) >/dev/null
mmd -i "$WORK/esp.img" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
BOOT_EFI=BOOTX64.EFI
[ "$DEB_ARCH" = arm64 ] && BOOT_EFI=BOOTAA64.EFI
mcopy -i "$WORK/esp.img" "$SYSTEMD_BOOT" "::/EFI/BOOT/$BOOT_EFI"
printf 'default debian.conf\ntimeout 0\n' >"$WORK/loader.conf"
cat >"$WORK/debian.conf" <<EOF
title   Debian GNU/Linux 12 (bookworm)
linux   /vmlinuz
initrd  /initrd.img
options root=LABEL=$ROOT_LABEL rw console=$SERIAL,115200$KERNEL_OPTIONS
EOF
mcopy -i "$WORK/esp.img" "$WORK/loader.conf" ::/loader/loader.conf
mcopy -i "$WORK/esp.img" "$WORK/debian.conf" ::/loader/entries/debian.conf
mcopy -i "$WORK/esp.img" "$KERNEL" ::/vmlinuz
mcopy -i "$WORK/esp.img" "$INITRD" ::/initrd.img

# --- 4. GPT disk --------------------------------------------------------------------------------
# 1 MiB (protective MBR + GPT), the ESP, the root partition, 1 MiB (backup GPT).
DISK_MIB=$((1 + ESP_MIB + ROOT_MIB + 1))
step "disk: GPT, ${DISK_MIB} MiB (ESP + root)"
truncate -s "${DISK_MIB}M" "$WORK/disk.raw"
sfdisk --quiet --no-reread --no-tell-kernel "$WORK/disk.raw" <<EOF
label: gpt
start=$((1 * 2048)), size=$((ESP_MIB * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system partition"
start=$(((1 + ESP_MIB) * 2048)), size=$((ROOT_MIB * 2048)), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="$ROOT_LABEL"
EOF
dd if="$WORK/esp.img" of="$WORK/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$WORK/root.img" of="$WORK/disk.raw" bs=1M seek=$((1 + ESP_MIB)) conv=notrunc,sparse status=none

step "qcow2 (compressed)"
qemu-img convert -c -f raw -O qcow2 "$WORK/disk.raw" "$WORK/out.qcow2"
chmod 0644 "$WORK/out.qcow2"
mv -f "$WORK/out.qcow2" "$OUT"
step "done: $OUT ($(du -h --apparent-size "$OUT" | cut -f1)) in $((SECONDS - START)) s"
