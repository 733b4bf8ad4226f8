#!/usr/bin/env bash
# The test cloud image: envdeck's own Debian image builder, plain cloud variant (see
# backend/images/debian_disk.sh for what it builds and what it needs).
#
#   build_cloud_image.sh OUT.qcow2
set -euo pipefail
exec bash "$(dirname "$0")/../../backend/images/debian_disk.sh" "$1" cloud
