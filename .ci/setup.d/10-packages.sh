# Debian packages for envdeck itself and for the tests.
PKGS=(
  python3 python3-venv python3-pip
  qemu-system-x86 qemu-utils qemu-user-static binfmt-support
  busybox-static dropbear-bin linux-image-amd64 cpio kmod
  docker.io openssh-client openssh-server tmux procps
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
