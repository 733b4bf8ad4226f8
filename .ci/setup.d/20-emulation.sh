# Emulated processes for the tests: an aarch64 busybox, binfmt_misc mounted, qemu-aarch64
# registered with flag F, and htop (the process benchmark's anchor). Sourced by .ci/install
# (set -euo pipefail; $SUDO and log available). Idempotent.

ARM64_DIR=/opt/envdeck-test/arm64
ARM64_BUSYBOX="$ARM64_DIR/busybox"

# 1. arm64 as a foreign dpkg architecture, so `apt-get download busybox-static:arm64` works.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  log "emulation: dpkg --add-architecture arm64"
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
fi

# 2. The aarch64 busybox at the fixed path other tests use.
if [ ! -x "$ARM64_BUSYBOX" ]; then
  log "emulation: fetching busybox-static:arm64 -> $ARM64_BUSYBOX"
  _emu_tmp="$(mktemp -d)"
  if ! (cd "$_emu_tmp" && apt-get download -qq busybox-static:arm64 >/dev/null 2>&1); then
    $SUDO apt-get update -qq
    (cd "$_emu_tmp" && apt-get download -qq busybox-static:arm64 >/dev/null)
  fi
  dpkg-deb -x "$_emu_tmp"/busybox-static_*_arm64.deb "$_emu_tmp/root"
  $SUDO mkdir -p "$ARM64_DIR"
  $SUDO install -m 0755 "$_emu_tmp/root/bin/busybox" "$ARM64_BUSYBOX"
  rm -rf "$_emu_tmp"
fi

# 3. binfmt_misc mounted.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  log "emulation: mounting binfmt_misc"
  $SUDO mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi

# 4. qemu-aarch64 registered with F (fix-binary: the interpreter is opened at registration, so it
#    works inside containers' mount namespaces too). Debian ships the register line.
_emu_entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
if [ -e "$_emu_entry" ] && ! grep -q '^flags: .*F' "$_emu_entry"; then
  log "emulation: qemu-aarch64 is registered without F: registering it again with F"
  echo -1 | $SUDO tee "$_emu_entry" >/dev/null
fi
if [ ! -e "$_emu_entry" ]; then
  log "emulation: registering qemu-aarch64 (flags F)"
  _emu_conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  if [ -r "$_emu_conf" ]; then
    _emu_line="$(grep -v '^#' "$_emu_conf" | head -n1)"
  else
    # Fallback: the same line Debian's qemu-user-static ships.
    _emu_line=':qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF'
  fi
  case "${_emu_line##*:}" in *F*) ;; *) _emu_line="${_emu_line}F" ;; esac
  printf '%s' "$_emu_line" | $SUDO tee /proc/sys/fs/binfmt_misc/register >/dev/null
fi
grep -q '^enabled' "$_emu_entry"

# 5. htop: the anchor of tests/benchmarks/test_bench_processes.py.
if ! command -v htop >/dev/null 2>&1; then
  log "emulation: installing htop"
  $SUDO apt-get install -y -qq --no-install-recommends htop >/dev/null \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends htop >/dev/null; }
fi
