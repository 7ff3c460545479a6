#!/usr/bin/env bash
# Durable acks and the host's CPU per ack under `wrk`, for one host binary.
#
#   benches/scripts/acks-cpu.sh target/release/hookhost [seconds]
#
# Starts the binary on a fresh data directory with no plugins (ingest alone,
# every event synced before its answer), runs `wrk -t2` POSTing 1 KB of JSON
# at 64 and then 512 connections, and prints acks/s and the host's CPU time
# (user + system, from /proc) per ack. To compare two builds, alternate them
# in one loop: this machine's speed drifts more between runs than most
# changes move these figures. Extra environment for the host goes in
# HOST_ENV, e.g. HOST_ENV="HOOKHOST_LOG=warn".
set -euo pipefail
bin=$(realpath "$1")
seconds=${2:-5}
port=${PORT:-18081}
work=$(mktemp -d)
trap 'kill "$host" 2>/dev/null || true; wait "$host" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir "$work/plugins"
: >"$work/hookhost.toml"
python3 -c 'import json; print("wrk.method = \"POST\"\nwrk.body = [[" + json.dumps({"pad": "x" * 1000}) + "]]\nwrk.headers[\"Content-Type\"] = \"application/json\"")' >"$work/post.lua"
# shellcheck disable=SC2086
env ${HOST_ENV:-} "$bin" serve --config "$work/hookhost.toml" --listen "127.0.0.1:$port" \
    --data "$work/data" --plugins "$work/plugins" >"$work/host.log" 2>&1 &
host=$!
url="http://127.0.0.1:$port/events/nobody.listens"
for _ in $(seq 100); do
    curl -sf -o /dev/null -X POST -H 'content-type: application/json' -d '{}' "$url" && break
    sleep 0.1
done
ticks=$(getconf CLK_TCK)
line="$(basename "$bin")"
for connections in 64 512; do
    before=$(awk '{print $14 + $15}' "/proc/$host/stat")
    requests=$(wrk -t2 -c"$connections" -d"${seconds}s" -s "$work/post.lua" "$url" | awk '/requests in/ {print $1}')
    after=$(awk '{print $14 + $15}' "/proc/$host/stat")
    line="$line  c$connections: $((requests / seconds)) acks/s, $(((after - before) * 1000000 / ticks / requests)) µs CPU per ack"
done
echo "$line"
