#!/usr/bin/env bash
# Install what wiredprof, its sample and its tests need, on a fresh Debian machine or this one.
# Idempotent: a second run only checks. Debian packages are installed when missing and we are root.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
if [ "${WIREDPROF_WITH_CHROMIUM:-0}" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing Debian packages: ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # Debian starts the daemons it installs; wiredprof starts its own on free loopback ports.
    for svc in mosquitto ssh; do
      (command -v service >/dev/null && service "$svc" stop >/dev/null 2>&1) || true
    done
  else
    echo "bootstrap: missing ${need_apt[*]}; install them (apt-get install ${need_apt[*]}) and run again" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.wiredprof-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[wiredflow,test,dask]'
  touch "$stamp"
fi
