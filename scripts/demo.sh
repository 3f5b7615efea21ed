#!/usr/bin/env bash
# The pi demo on this machine: builds, starts a coordinator and a worker on loopback, submits the
# seed's pi job through the REST API, waits for it and prints the estimate.
#   SAMPLES=1e10 BATCH_SIZE=100000 SEED=42 scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
samples=${SAMPLES:-1e10} batch=${BATCH_SIZE:-100000} seed=${SEED:-42}
scripts/build.sh >/dev/null
dir=$(mktemp -d)
cleanup() { kill "${worker:-}" "${server:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
build/bin/tally-server --listen 127.0.0.1:0 --db "$dir/tally.db" >"$dir/port" 2>"$dir/server.log" &
server=$!
for _ in $(seq 100); do grep -q listening "$dir/port" 2>/dev/null && break; sleep 0.05; done
api="http://$(sed -n 's/^listening on //p' "$dir/port")"
build/bin/tally-worker --server "$api" 2>"$dir/worker.log" &
worker=$!
echo "coordinator $api, one worker with $(nproc) threads"
job=$(curl -sf -X POST "$api/v1/jobs" -H 'Content-Type: application/json' \
  -d "{\"kernel\":\"pi\",\"samples\":$samples,\"batch_size\":$batch,\"seed\":$seed}")
id=$(jq -r .id <<<"$job")
echo "submitted job $id: $(jq -c '{kernel,samples,batch_size,seed}' <<<"$job")"
while :; do
  job=$(curl -sf "$api/v1/jobs/$id")
  state=$(jq -r .state <<<"$job")
  [ "$state" = succeeded ] || [ "$state" = failed ] || [ "$state" = cancelled ] && break
  sleep 0.2
done
jq -r '"\(.state): pi ~= \(.result.pi) +- \(.result.stderr) from \(.counts.samples) samples (\(.counts.inside) inside) in \(.elapsed_s) s, \(.rate / 1e9 * 100 | floor / 100)e9 samples/s"' <<<"$job"
