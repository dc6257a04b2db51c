#!/usr/bin/env bash
# GPU check of the CUDA backend, in under 5 minutes on one GPU:
#   1. the CUDA kernel tests against the CPU reference executor (runtime/tests/cuda.rs),
#   2. `shardc run --backend cuda --check` on a small GPT training step (Megatron dp=2,tp=2:
#      four ranks, all on GPU 0 if there is one GPU; SGD with momentum, because Adam's update of
#      a near-zero gradient (the qkv bias) turns 1e-7 differences into 1e-3 ones: the threads
#      backend fails --check on Adam there too),
#   3. the timing of one transformer layer's per-device program (h=4096, s=2048, micro-batch 1,
#      bf16), in ms and TFLOP/s against the device's bf16 peak from cost-model/catalog/devices/.
# Results go to $OUT/gpu-check.txt (OUT defaults to ./gpu-check-out); the exit status is 0 only
# if every step passed and no test skipped.
#
# Usage:
#   scripts/gpu-check.sh --prepare   on a machine with cargo (no GPU needed): builds the release
#                                    binaries into target/gpu-check/ (carry that folder over;
#                                    PROFILE=dev reuses a debug build instead)
#   scripts/gpu-check.sh             on the GPU machine: runs the binaries in target/gpu-check/
#                                    (no Rust toolchain, no network needed)
#   scripts/gpu-check.sh --build     on a GPU machine with cargo: --prepare, then the check
#
# Libraries: the CUDA driver (libcuda.so.1) from the system; NVRTC and cuBLAS from $CUDA_HOME,
# /usr/local/cuda*, or pip's nvidia-* packages; NCCL from $NCCL_LIB or the nvidia-nccl-cu13
# package, which ships only libnccl.so.2: cudarc opens `libnccl.so`, so a folder with that
# symlink goes first on LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/gpu-check
mode=check
case "${1:-}" in
  --prepare) mode=prepare ;;
  --build) mode=build ;;
  "") ;;
  *) echo "usage: $0 [--prepare | --build]" >&2; exit 2 ;;
esac

# PROFILE=release (default) or dev: dev reuses a debug build (quicker where cargo is slow;
# the GPU kernels are the same, only host-side code is less optimised).
PROFILE=${PROFILE:-release}
prepare() {
  mkdir -p "$BIN"
  local flag="--release" dir=release
  if [ "$PROFILE" = dev ]; then flag=""; dir=debug; fi
  cargo build $flag --features cuda --bin shardc
  cp "target/$dir/shardc" "$BIN/shardc"
  # The test binaries' paths, from cargo's JSON messages.
  local json
  json=$(cargo test $flag -p shardc-runtime --features cuda --test cuda --test cuda_layer \
    --no-run --message-format=json)
  for t in cuda cuda_layer; do
    local exe
    exe=$(printf '%s\n' "$json" | grep "\"name\":\"$t\"" | grep -o '"executable":"[^"]*"' |
      tail -1 | cut -d'"' -f4)
    [ -n "$exe" ] || { echo "no test binary for $t" >&2; exit 1; }
    cp "$exe" "$BIN/$t"
  done
  if command -v strip >/dev/null; then strip "$BIN"/*; fi
  local kib
  kib=$(du -sk "$BIN" | cut -f1)
  echo "built $BIN ($PROFILE): $(ls "$BIN" | tr '\n' ' ')($((kib / 1024)) MiB; carry limit 64 MiB)"
  [ "$kib" -le $((64 * 1024)) ] || { echo "$BIN is over 64 MiB" >&2; exit 1; }
}

if [ "$mode" != check ]; then prepare; fi
if [ "$mode" = prepare ]; then exit 0; fi

OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
RESULTS=$OUT/gpu-check.txt
: > "$RESULTS"
log() { echo "$*" | tee -a "$RESULTS"; }
for b in shardc cuda cuda_layer; do
  [ -x "$BIN/$b" ] || { log "FAIL: $BIN/$b is missing: run $0 --prepare where cargo is"; exit 1; }
done

# Library search: first existing folder with each library.
site_dirs() {
  python3 - <<'EOF' 2>/dev/null || true
import site, sys
for d in site.getsitepackages() + [site.getusersitepackages()] + sys.path:
    print(d)
EOF
}
find_lib() { # name, folders...
  local name=$1; shift
  for d in "$@"; do
    [ -d "$d" ] || continue
    local f
    f=$(find -L "$d" -maxdepth 6 -name "$name" -print -quit 2>/dev/null || true)
    if [ -n "$f" ]; then dirname "$f"; return 0; fi
  done
  return 1
}
mapfile -t SITE < <(site_dirs)
CUDA_DIRS=("${CUDA_HOME:-/nonexistent}" /usr/local/cuda /usr/local/cuda-13.0 /usr/local/cuda-13 /usr/lib/x86_64-linux-gnu "${SITE[@]}")
LIBS=$OUT/lib
mkdir -p "$LIBS"
extra=""
for lib in libnvrtc.so.13 libcublas.so.13; do
  if d=$(find_lib "$lib" "${CUDA_DIRS[@]}"); then
    extra="$extra:$d"
  else
    log "warning: $lib not found under ${CUDA_DIRS[*]}"
  fi
done
nccl=""
if [ -n "${NCCL_LIB:-}" ] && [ -e "$NCCL_LIB/libnccl.so.2" ]; then
  nccl=$NCCL_LIB/libnccl.so.2
elif d=$(find_lib libnccl.so.2 "${SITE[@]}" /usr/lib/x86_64-linux-gnu /usr/local/cuda); then
  nccl=$d/libnccl.so.2
fi
if [ -n "$nccl" ]; then
  ln -sf "$nccl" "$LIBS/libnccl.so"
  log "NCCL: $nccl (as $LIBS/libnccl.so)"
else
  log "warning: libnccl.so.2 not found (the NCCL test will fail)"
fi
export LD_LIBRARY_PATH="$LIBS${extra}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
log "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
log "GPU: ${gpu_name:-unknown} ($(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1 || echo 'no nvidia-smi'))"
log "date: $(date -u +%FT%TZ)"

status=0
step() { # name, timeout seconds, command...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  log "== $name"
  if timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; then
    if grep -q 'skipped: ' "$OUT/$name.log"; then
      log "FAIL: $name: a test skipped on the GPU machine:"; grep -o 'skipped: .*' "$OUT/$name.log" | sort -u | tee -a "$RESULTS"
      status=1
    else
      log "ok: $name ($((SECONDS - t0)) s)"
    fi
  else
    log "FAIL: $name (exit $?, $((SECONDS - t0)) s); last lines of $OUT/$name.log:"
    tail -20 "$OUT/$name.log" | tee -a "$RESULTS"
    status=1
  fi
}

# Test binaries run in their package's folder, as cargo runs them.
step kernel-tests 150 bash -c "cd runtime && ../$BIN/cuda --nocapture --test-threads=4"
grep -E '^test .* (ok|FAILED)$|^test result' "$OUT/kernel-tests.log" | tee -a "$RESULTS" || true

GPT=$OUT/gpt-train.json
step gpt-run-check 120 bash -c "$BIN/shardc zoo gpt --layers 2 --hidden 64 --heads 4 --seq 32 \
  --vocab 256 --batch 4 --train --optimizer sgd --shardings megatron --mesh dp=2,tp=2 -o $GPT &&
  $BIN/shardc run $GPT --mesh dp=2,tp=2 --backend cuda --check --tolerance 1e-4"
grep -E 'backend|check passed|FAIL' "$OUT/gpt-run-check.log" | tee -a "$RESULTS" || true

# The bf16 peak of the catalog entry named in the GPU's name (h200, h100, a100-80gb, ...).
lower=$(echo "$gpu_name" | tr 'A-Z' 'a-z')
device=""
for f in cost-model/catalog/devices/*.json; do
  n=$(basename "$f" .json)
  key=${n%%-*}
  if [[ "$lower" == *"$key"* ]]; then
    if [[ "$n" == *-* ]] && [[ "$lower" != *"${n#*-}"* ]]; then continue; fi
    device=$n
  fi
done
peak=""
if [ -n "$device" ]; then
  peak=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['peak_flops']['bf16'])" \
    "cost-model/catalog/devices/$device.json" 2>/dev/null || true)
  log "catalog device: $device, bf16 peak ${peak:-unknown} FLOP/s"
else
  log "warning: no catalog device matches '$gpu_name'; TFLOP/s without a peak"
fi
step layer-timing 150 env SHARDC_BF16_PEAK="$peak" SHARDC_GPU_CHECK_OUT="$RESULTS" \
  bash -c "cd runtime && ../$BIN/cuda_layer --ignored --nocapture --test-threads=1"

if [ $status -eq 0 ]; then log "gpu-check: PASSED"; else log "gpu-check: FAILED"; fi
exit $status
