# dockerd for the container tests: start it (in the background, logging to
# /var/log/envdeck-dockerd.log) unless a daemon already answers. Sourced by .ci/install
# (set -euo pipefail; $SUDO and log available). Idempotent. The test images themselves are made
# by tests/integration/docker_images.py on first use.

_docker_log=/var/log/envdeck-dockerd.log

if ! command -v dockerd >/dev/null 2>&1 && [ ! -x /usr/sbin/dockerd ]; then
  echo "30-docker: dockerd is not installed (the docker.io package provides it)" >&2
  exit 1
fi

if $SUDO docker info >/dev/null 2>&1; then
  log "docker: daemon already answering"
else
  # A pid file left by a dockerd that died makes the next one refuse to start.
  if [ -f /var/run/docker.pid ]; then
    _docker_pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
    if [ -z "$_docker_pid" ] || ! $SUDO kill -0 "$_docker_pid" 2>/dev/null; then
      $SUDO rm -f /var/run/docker.pid
    fi
  fi
  log "docker: starting dockerd (log: $_docker_log)"
  $SUDO sh -c "nohup $(command -v dockerd || echo /usr/sbin/dockerd) >>'$_docker_log' 2>&1 </dev/null &"
  _docker_ok=""
  for _ in $(seq 1 60); do
    if $SUDO docker info >/dev/null 2>&1; then
      _docker_ok=1
      break
    fi
    sleep 1
  done
  if [ -z "$_docker_ok" ]; then
    echo "30-docker: dockerd did not answer within 60 s; last lines of $_docker_log:" >&2
    $SUDO tail -n 30 "$_docker_log" >&2 || true
    exit 1
  fi
  log "docker: dockerd is up"
fi
