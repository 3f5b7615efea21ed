#!/usr/bin/env bash
# Installs what tally needs to build and test on Debian 12 (as root, or through sudo).
set -euo pipefail
pkgs=(cmake gcc make pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev
      libcurl4-openssl-dev libcmocka-dev python3 python3-yaml curl jq openssl ca-certificates
      valgrind clang libclang-rt-dev systemd docker.io docker-compose debootstrap chromium
      fonts-liberation)
# clang and its libFuzzer runtime (only recommended): scripts/fuzz.sh; systemd: systemd-analyze
# checks the units (test_install); docker.io, docker-compose and debootstrap: the compose
# cluster's test (scripts/docker-engine.sh starts an engine and makes the base image); chromium
# and its fonts: the dashboard's test (headless).
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
