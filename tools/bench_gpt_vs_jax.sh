#!/usr/bin/env bash
# The reference executor against JAX on the same zoo GPT forward, in one run on one machine
# (issue 15: ours must reach >= 50% of JAX's GFLOP/s). JAX runs before and after the criterion
# bench, so a load change during the run shows as a spread between the two JAX figures.
#
#   pip install -r tools/requirements-jax.txt
#   tools/bench_gpt_vs_jax.sh                      # GPT-2 small: l=12 h=768 a=12 s=256 V=50304 B=4
#   SHARDC_BENCH_GPT=2,256,4,128,8192,2 tools/bench_gpt_vs_jax.sh   # a quick smaller model
set -euo pipefail
cd "$(dirname "$0")/.."
IFS=, read -r L H A S V B <<<"${SHARDC_BENCH_GPT:-12,768,12,256,50304,4}"
jax() {
  python3 tools/jax_gpt_forward.py --layers "$L" --hidden "$H" --heads "$A" --seq "$S" \
    --vocab "$V" --batch "$B" --repeats 5
}
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "jax (before): $(jax)"
SHARDC_BENCH_GPT="$L,$H,$A,$S,$V,$B" cargo bench -p shardc-runtime --bench gpt_forward -- \
  --sample-size 10 2>&1 | grep -E 'gpt_forward/|time:|thrpt:'
echo "jax (after): $(jax)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
