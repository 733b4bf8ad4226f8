#!/usr/bin/env bash
# The test cloud image: envdeck's own Debian image builder, plain cloud variant (see
# backend/images/debian_disk.sh for what it builds and what it needs).
#
#   build_cloud_image.sh [--arch x86_64|aarch64] OUT.qcow2    (or ARCH=aarch64 in the environment)
set -euo pipefail
arch="${ARCH:-x86_64}"
if [ "${1:-}" = --arch ]; then
  [ $# -ge 2 ] || { echo "usage: $0 [--arch x86_64|aarch64] OUT.qcow2" >&2; exit 2; }
  arch="$2"
  shift 2
fi
[ $# -eq 1 ] || { echo "usage: $0 [--arch x86_64|aarch64] OUT.qcow2" >&2; exit 2; }
exec bash "$(dirname "$0")/../../backend/images/debian_disk.sh" "$1" cloud "$arch"
