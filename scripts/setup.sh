#!/usr/bin/env bash
# Installs what tally needs on Debian 12 (as root, or through sudo): to build and run it, and with
# --test also what the tests use.
#   scripts/setup.sh          build and the demo
#   scripts/setup.sh --test   and every test (CI's .ci/run)
set -euo pipefail
pkgs=(cmake gcc make pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev
      libcurl4-openssl-dev libcmocka-dev libprimesieve-dev python3 curl jq openssl ca-certificates)
if [ "${1:-}" = --test ]; then
  # python3-yaml: the OpenAPI test; valgrind; clang and its libFuzzer runtime (only recommended):
  # scripts/fuzz.sh; systemd: systemd-analyze checks the units; docker.io, docker-compose and
  # debootstrap: the compose cluster's test (scripts/docker-engine.sh starts an engine and makes
  # the base image); chromium and its fonts: the dashboard's test (headless); primesieve: the
  # command the primes benchmark compares with; slurm-wlm and munge: a one-node Slurm cluster
  # (test_slurm).
  pkgs+=(python3-yaml valgrind clang libclang-rt-dev systemd docker.io docker-compose debootstrap
         chromium fonts-liberation primesieve slurm-wlm munge)
  pkgs+=(iproute2) # ip netns, veth and bridges: test_hosts's separate hosts
elif [ $# -gt 0 ]; then
  echo "usage: scripts/setup.sh [--test]" >&2
  exit 2
fi
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
