# The aarch64 tiny guest: qemu-system-aarch64 (Debian's qemu-system-arm) boots it on -M virt
# under TCG; qemu-efi-aarch64 is the UEFI firmware aarch64 cloud images boot with. The guest's
# own packages (linux-image-arm64, busybox-static, dropbear-bin, socat, qemu-user-static, all
# :arm64) are fetched by envdeck itself with `apt-get download`; they need arm64 as a dpkg
# architecture (20-emulation.sh adds it). Sourced by .ci/install (set -euo pipefail; $SUDO and
# log available). Idempotent.

_a64_missing=""
command -v qemu-system-aarch64 >/dev/null 2>&1 || _a64_missing=" qemu-system-arm"
[ -r /usr/share/AAVMF/AAVMF_CODE.fd ] || _a64_missing="$_a64_missing qemu-efi-aarch64"
if [ -n "$_a64_missing" ]; then
  log "aarch64: installing$_a64_missing"
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $_a64_missing >/dev/null \
    || { $SUDO apt-get update -qq \
      && $SUDO apt-get install -y -qq --no-install-recommends $_a64_missing >/dev/null; }
fi
command -v qemu-system-aarch64 >/dev/null
