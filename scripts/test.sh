#!/usr/bin/env bash
# Builds and runs every test: unit and integration, then the same again under AddressSanitizer
# and UndefinedBehaviorSanitizer (but for the suites about timing and deployment: see
# tests/CMakeLists.txt), then the decoders' fuzz targets for about a minute
# (scripts/fuzz.sh). ctest labels select parts: ctest --test-dir build -L unit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir build --output-on-failure
cmake -S . -B build-asan -DTALLY_WERROR=ON -DTALLY_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-asan -j"$(nproc)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure
scripts/fuzz.sh
