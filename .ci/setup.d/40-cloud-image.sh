# Tools for the Debian images (the cloud-image test's and the docker template's):
# backend/images/debian_disk.sh builds a UEFI Debian image from Debian packages (debootstrap,
# mkfs.ext4 -d, mkfs.vfat + mtools, sfdisk, systemd-boot, qemu-img), and the instances boot it on
# q35 with OVMF. The aarch64 images (the aarch64 cloud-image test's, the aarch64 docker template's)
# are built from arm64 packages through the host's qemu-aarch64 binfmt handler with flag F
# (20-emulation.sh) and boot on virt with AAVMF (qemu-efi-aarch64, 25-aarch64.sh); their
# systemd-boot comes from the guest's own systemd-boot-efi:arm64. The tests build the images on
# first use into the shared test cache. Sourced by .ci/install (set -euo pipefail;
# $SUDO and log available). Idempotent.
_cloud_pkgs=(debootstrap dosfstools mtools fdisk e2fsprogs systemd-boot-efi qemu-utils ovmf)
_cloud_missing=()
for p in "${_cloud_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || _cloud_missing+=("$p")
done
if [ ${#_cloud_missing[@]} -gt 0 ]; then
  log "cloud image: installing ${_cloud_missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${_cloud_missing[@]}" >/dev/null
fi
