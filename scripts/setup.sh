#!/usr/bin/env bash
# Idempotent set-up: Debian packages the tests need, and .venv with the agent (editable) and test tools.
# Works on a stock Debian 12 with PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin: the venv is
# made from Debian's own /usr/bin/python3.11 (not whatever python3.11 comes first on PATH, e.g. a pyenv shim), so
# every machine runs the tests on the same interpreter; PYTHON=... overrides it.
set -euo pipefail
cd "$(dirname "$0")/.."

# python3.11-venv: `python3.11 -m venv` (stock Debian 12 lacks it); patchelf: the AMX-safe UML kernel
# (scripts/uml_kernel.py); openssl: test certificates; kmod, ipvsadm, curl: inside the UML guest;
# systemd-container (systemd-nspawn) and mmdebstrap: the host lab (hanode.lab.hosts, real Debian hosts);
# conntrackd: connection sync for the nftables backend (conntrack_sync);
# prometheus: promtool and the Prometheus server of the monitoring mixin's tests.
DEB_PACKAGES=(python3.11 python3.11-venv patchelf openssl iproute2 nftables keepalived tcpdump iputils-ping kmod ipvsadm
  conntrack conntrackd curl socat procps psmisc shellcheck systemd-container mmdebstrap prometheus)
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Several setups may run at once on one machine (worktrees, CI): wait for dpkg's lock instead of failing.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-/usr/bin/python3.11}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PY"
  "$PY" -m venv .venv
fi
stamp=.venv/.setup-stamp
want=$(cat requirements-test.txt agent/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x .venv/bin/hanode ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-test.txt
  .venv/bin/python -m pip install -q --disable-pip-version-check -e agent
  echo "$want" > "$stamp"
fi
echo "setup: ready (.venv/bin/hanode)"
