#!/usr/bin/env bash
# Makes docker/compose.yaml usable on a machine that reaches Debian's mirror but no image registry
# (as root; each step is skipped when its result is already there):
#  1. starts dockerd in the background when no engine answers (log: $TALLY_DOCKER_DIR/dockerd.log);
#  2. makes debian:bookworm-slim when it is neither present nor pullable: debootstrap (minbase)
#     from the machine's Debian mirror, with the machine's Debian sources and apt fetch settings,
#     imported with `docker import`;
#  3. with --build: builds tally-server:latest and tally-worker:latest (and tally-build:latest,
#     the build stage, kept as a cache) from docker/Dockerfile with --network host, so that apt
#     inside the build reaches the mirror as this machine does; then drops the stale tally images.
#   scripts/docker-engine.sh [--build]
#   TALLY_DOCKER_DIR      where dockerd's log and pid go (default /var/tmp/tally-docker)
#   TALLY_DOCKER_STORAGE  storage driver for a dockerd started here (default: overlay2 where the
#                         kernel has overlayfs and dockerd starts with it, else vfs)
#   TALLY_DEBIAN_MIRROR   mirror for debootstrap (default: the first one apt uses for bookworm)
set -euo pipefail
cd "$(dirname "$0")/.."
build=0
case "${1:-}" in
  --build) build=1 ;;
  "") ;;
  *) echo "usage: $0 [--build]" >&2; exit 2 ;;
esac
dir=${TALLY_DOCKER_DIR:-/var/tmp/tally-docker}
say() { echo "docker-engine: $*"; }

# 1. The engine.
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || { say "no dockerd: apt-get install docker.io" >&2; exit 1; }
  [ "$(id -u)" -eq 0 ] || { say "no engine answers, and starting one needs root" >&2; exit 1; }
  drivers=${TALLY_DOCKER_STORAGE:-}
  if [ -z "$drivers" ]; then
    drivers=vfs
    grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
    grep -qw overlay /proc/filesystems && drivers="overlay2 vfs"
  fi
  mkdir -p "$dir"
  for driver in $drivers; do
    say "starting dockerd (storage driver $driver), log in $dir/dockerd.log"
    # In its own session and out of the work tree, so that it outlives this script, whatever
    # test started it, and the tree itself.
    (cd / && exec setsid dockerd --storage-driver="$driver" >>"$dir/dockerd.log" 2>&1 </dev/null) &
    echo $! >"$dir/dockerd.pid"
    for _ in $(seq 120); do
      docker info >/dev/null 2>&1 && break 2
      kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null || break
      sleep 0.5
    done
    kill "$(cat "$dir/dockerd.pid")" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null || break; sleep 0.5; done
  done
  if ! docker info >/dev/null 2>&1; then
    say "dockerd did not come up; the end of its log:" >&2
    tail -20 "$dir/dockerd.log" >&2
    exit 1
  fi
fi

# 2. The base image.
base=debian:bookworm-slim
if ! docker image inspect "$base" >/dev/null 2>&1 &&
   ! timeout 120 docker pull -q "$base" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { say "no debootstrap: apt-get install debootstrap" >&2; exit 1; }
  # The machine's Debian sources: deb822 files and one-line lists, active ones only.
  sources=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -q 'debian\.org' "$f" && sources+=("$f")
  done
  mirror=${TALLY_DEBIAN_MIRROR:-}
  if [ -z "$mirror" ]; then
    for f in "${sources[@]}"; do
      mirror=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }
                    /^deb / && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' "$f")
      [ -n "$mirror" ] && break
    done
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  root=$(mktemp -d /var/tmp/tally-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  say "making $base: debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
    { tail -20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
  rm -f "$root.log"
  # Like the published image: apt sources in sources.list.d, no documentation, empty caches.
  [ ${#sources[@]} -eq 0 ] || rm -f "$root/etc/apt/sources.list"
  for f in "${sources[@]}"; do
    case "$f" in
      */sources.list) cp "$f" "$root/etc/apt/sources.list.d/debian.list" ;;
      *) cp "$f" "$root/etc/apt/sources.list.d/" ;;
    esac
  done
  # The settings with which apt fetches here: a proxy, a mirror's relaxed validity checks.
  for f in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
    [ -f "$f" ] && grep -Eqi 'proxy|check-valid-until|check-date' "$f" &&
      cp "$f" "$root/etc/apt/apt.conf.d/$(basename "$f")"
  done
  # The published image's apt and dpkg settings (debuerreotype's): no caches, no downloaded
  # packages left behind, no translations, no documentation.
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
  echo 'force-unsafe-io' >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  chmod 755 "$root" # mktemp made it 0700, and it becomes the image's /
  tar -C "$root" --numeric-owner -c . |
    docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' - "$base" >/dev/null
  rm -rf "$root"
  trap - EXIT
  say "made $base ($(docker image inspect -f '{{.Size}}' "$base" | awk '{ printf "%d MB", $1 / 1e6 }'))"
fi

# 3. The tally images. The build stage is tagged too, so that its cached layers (the -dev
# packages) survive the pruning of what a rebuild replaced.
if [ "$build" -eq 1 ]; then
  mkdir -p "$dir"
  for target in build server worker; do
    say "building tally-$target:latest"
    docker build --network host --force-rm -f docker/Dockerfile --target "$target" -t "tally-$target:latest" . \
        >"$dir/build-$target.log" 2>&1 ||
      { say "the build failed; the end of $dir/build-$target.log:" >&2; tail -40 "$dir/build-$target.log" >&2; exit 1; }
  done
  docker image prune -f --filter label=tally.image >/dev/null
fi
