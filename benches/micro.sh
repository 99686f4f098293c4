#!/usr/bin/env bash
# Per-operation cost of the request path: ns/op (noisy) and callgrind instructions/op (stable).
# Instructions/op = (I(2N) - I(N)) / N, so setup cost cancels out. Pinned to one CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bench micro >/dev/null 2>&1
bin=$(ls -t target/release/deps/micro-* | grep -v '\.d$' | head -1)
cpu=${BENCH_CPU:-0}
ops=(match_10_rules match_100_rules match_1000_rules match_10_lookahead_rules template_subject template_extra_pipeline cookie_parse session_cache_hit digest_cache_key jwt_parse pipeline_play1_request pipeline_jwt_cache_hit)
declare -A ns
while read -r name value; do ns[$name]=$value; done < <(taskset -c "$cpu" "$bin" | tail -n +2)
instr() {
  local out; out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$1" "$2" >/dev/null 2>&1
  grep -E '^summary:|^totals:' "$out" | head -1 | awk '{print $2}'
  rm -f "$out"
}
n=2000
printf '| %-24s | %10s | %14s |\n' operation ns/op instructions/op
printf '|%s|%s|%s|\n' "--------------------------" "------------" "----------------"
for op in "${ops[@]}"; do
  a=$(instr "$op" "$n"); b=$(instr "$op" $((2 * n)))
  printf '| %-24s | %10s | %14d |\n' "$op" "${ns[$op]}" $(((b - a) / n))
done
