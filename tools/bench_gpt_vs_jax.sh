#!/usr/bin/env bash
# The reference executor against JAX on the same zoo GPT forward, on one machine in one run
# (issue 15: ours must reach >= 50% of JAX's GFLOP/s). On a shared machine the load moves
# during the run, so the two alternate: ROUNDS rounds of (JAX, 5 timed runs after its compile;
# then ours, criterion with --sample-size 10), and the summary compares the medians.
#
#   pip install -r tools/requirements-jax.txt
#   tools/bench_gpt_vs_jax.sh                      # GPT-2 small: l=12 h=768 a=12 s=256 V=50304 B=4
#   SHARDC_BENCH_GPT=2,256,4,128,8192,2 tools/bench_gpt_vs_jax.sh   # a quick smaller model
#   ROUNDS=5 SHARDC_BENCH_FEATURES=mpi tools/bench_gpt_vs_jax.sh    # reuse a --features mpi build
#   SHARDC_BENCH_BIN=target/release/deps/gpt_forward-HASH tools/bench_gpt_vs_jax.sh  # no cargo
set -euo pipefail
cd "$(dirname "$0")/.."
IFS=, read -r L H A S V B <<<"${SHARDC_BENCH_GPT:-12,768,12,256,50304,4}"
export SHARDC_BENCH_GPT="$L,$H,$A,$S,$V,$B"
rounds="${ROUNDS:-3}"
features=()
if [ -n "${SHARDC_BENCH_FEATURES:-}" ]; then features=(--features "$SHARDC_BENCH_FEATURES"); fi
if [ -n "${SHARDC_BENCH_BIN:-}" ]; then
  bench=("$SHARDC_BENCH_BIN" --bench)
else
  bench=(cargo bench -p shardc-runtime "${features[@]}" --bench gpt_forward)
  # Build first, so no round times the compiler.
  "${bench[@]}" --no-run >/dev/null 2>&1
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for r in $(seq "$rounds"); do
  echo "round $r, load $(cut -d' ' -f1-3 /proc/loadavg)"
  j="$(python3 tools/jax_gpt_forward.py --layers "$L" --hidden "$H" --heads "$A" --seq "$S" \
    --vocab "$V" --batch "$B" --repeats 5)"
  echo "jax $j" | tee -a "$log"
  "${bench[@]}" $([ -z "${SHARDC_BENCH_BIN:-}" ] && echo --) --sample-size 10 2>&1 | grep -E 'time:' | sed 's/^ */ours /' | tee -a "$log"
done
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$log" <<'EOF'
import json, re, statistics, sys
jax, ours, flops = [], [], None
unit = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6}
for line in open(sys.argv[1]):
    if line.startswith("jax "):
        j = json.loads(line[4:])
        jax.append(statistics.median(j["seconds_all"]))
        flops = j["matmul_gflop"]
    elif line.startswith("ours "):
        m = re.search(r"\[(\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\]", line)
        ours.append(float(m.group(3)) * unit[m.group(4)])
j, o = statistics.median(jax), statistics.median(ours)
print(f"JAX, median over rounds of each round's median of 5: {j:.3f} s ({flops / j:.1f} GFLOP/s); rounds {[round(x, 3) for x in jax]}")
print(f"ours, median over rounds of criterion's median: {o:.3f} s ({flops / o:.1f} GFLOP/s); rounds {[round(x, 3) for x in ours]}")
print(f"ours / JAX in GFLOP/s: {j / o:.0%}")
EOF
