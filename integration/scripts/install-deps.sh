#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian 12 machine: Samba AD DC
# packages, tinyproxy (the HTTP CONNECT proxy the harness runs privately) and
# prometheus (for promtool, which checks and unit-tests configs/prometheus),
# without letting package scripts start any daemon, and the Service Bus
# emulator's npm dependencies. Idempotent: a second run changes nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: must run as root to install Debian packages ($*)" >&2
    exit 1
  fi
}

pkgs=(samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind ldap-utils ldb-tools openssl
      chromium fonts-dejavu-core tinyproxy prometheus)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  need_root "${missing[*]}"
  echo "install-deps: installing ${missing[*]}"
  # Keep package scripts from starting smbd/nmbd/samba/tinyproxy/prometheus:
  # nmbd would broadcast beyond loopback, the test DC and the proxy are
  # started by the harness only, each with its own configuration, and only
  # prometheus's promtool is wanted, never its server.
  prc=/usr/sbin/policy-rc.d
  had_prc=0; [ -e "$prc" ] && had_prc=1
  if [ $had_prc = 0 ]; then printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod +x "$prc"; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ $had_prc = 0 ]; then rm -f "$prc"; fi
  # Belt and braces: make sure no distro-started daemon is left behind.
  for svc in samba-ad-dc smbd nmbd winbind tinyproxy prometheus; do
    systemctl stop "$svc" >/dev/null 2>&1 || true
  done
  systemctl disable tinyproxy prometheus >/dev/null 2>&1 || true
fi

if [ -f integration/sbemu/package-lock.json ]; then
  if ! command -v npm >/dev/null; then
    need_root "nodejs npm"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  (cd integration/sbemu && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "install-deps: ok"
