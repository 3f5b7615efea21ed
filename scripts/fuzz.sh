#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ (clang, ASan+UBSan) into ./build-fuzz, runs every
# saved input of tests/fuzz/regressions/<target>/ once through its target, then fuzzes each target
# for a bounded time on a copy of its seed corpus (the tree never grows). Fails on any crash, leak,
# timeout or broken invariant, and keeps the input that did it in build-fuzz/artifacts/ (move it to
# tests/fuzz/regressions/<target>/ once fixed).
#   FUZZ_SECONDS  wall-clock seconds of fuzzing in all (default 60)
#   FUZZ_JOBS     targets fuzzed at once (default: online CPUs)
#   scripts/fuzz.sh [target...]        e.g. FUZZ_SECONDS=600 scripts/fuzz.sh fuzz_job_spec
set -euo pipefail
cd "$(dirname "$0")/.."
total=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-$(nproc)}
opts=(-timeout=5 -rss_limit_mb=2048)

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in tests/fuzz/fuzz_*.c; do
    t=$(basename "$f" .c)
    targets+=("$t")
  done
fi

cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DTALLY_FUZZ=ON -DTALLY_WERROR=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz >/dev/null
bin=build-fuzz/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0

# Saved inputs first: each must now pass.
for t in "${targets[@]}"; do
  shopt -s nullglob
  files=(tests/fuzz/regressions/"$t"/*)
  shopt -u nullglob
  [ ${#files[@]} -gt 0 ] || continue
  if "$bin/$t" "${opts[@]}" "${files[@]}" >"$work/$t.regress.log" 2>&1; then
    echo "fuzz: $t: ${#files[@]} regression input(s) pass"
  else
    echo "fuzz: $t: a regression input fails again:"
    grep -E '^Running:|invariant|ERROR|SUMMARY' "$work/$t.regress.log" | tail -20
    status=1
  fi
done

# Then fuzz: the targets share the time, FUZZ_JOBS at once.
rounds=$(( (${#targets[@]} + jobs - 1) / jobs ))
per=$(( total / rounds ))
[ "$per" -ge 1 ] || per=1
fuzz_one() {
  local t=$1 log="$work/$1.log"
  mkdir -p "$work/corpus/$t" "$work/artifacts"
  cp tests/fuzz/corpus/"$t"/* "$work/corpus/$t/"
  if "$bin/$t" "${opts[@]}" -max_total_time="$per" -max_len=8192 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/$t-" "$work/corpus/$t" >"$log" 2>&1; then
    echo "fuzz: $t: $(sed -n 's/^stat::number_of_executed_units: *//p' "$log") runs in ${per} s," \
      "$(grep -Eo 'cov: [0-9]+' "$log" | tail -1), no failure"
    return 0
  fi
  mkdir -p build-fuzz/artifacts
  cp "$work/artifacts/$t-"* build-fuzz/artifacts/ 2>/dev/null || true
  echo "fuzz: $t: FAILED; input kept in build-fuzz/artifacts/, log tail:"
  grep -vE '^(#[0-9]|INFO:|MS:|stat::|	NEW_FUNC)' "$log" | tail -40
  return 1
}
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
[ "$status" -eq 0 ] && echo "fuzz: ${#targets[@]} targets, no failure"
exit "$status"
