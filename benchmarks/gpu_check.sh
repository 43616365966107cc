#!/usr/bin/env bash
# GPU check: on an offline Linux machine with one NVIDIA GPU, from this working tree, measure in
# this order, each stage in its own process under a time limit, all under one budget (BUDGET_S,
# default 540 s, so the script ends within a 10-minute run):
#   setup     the Python packages (those installed; missing ones only from wheels in $WHEELS,
#             default .whl; the package index only with ALLOW_INDEX=1)
#   data      DATA_DIR/cifar10 (array layout) used in place, or DATA_DIR/cifar10-webp decoded
#   generate  the full-size CIFAR-C workload (19 x 5 x 10,000 test images) with `corrupt --device cuda`
#   train     a short real training run (auxiliary, ResNet-18, 5 epochs on the data)
#   evaluate  that run on the generated CIFAR-C (bf16), end to end
#   steps     benchmarks/engine_speed.py steps: images/s per method, fp32 / bf16 eager / bf16
#             optimised (CUDA graphs via torch.compile reduce-overhead + fused SGD): the before/after table
#   packing   benchmarks/engine_speed.py packing: aggregate images/s of K = 1, 2, 4, 8 auxiliary
#             runs at once (CUDA MPS when it starts); packing.json feeds estimate_grid_time.py
#   pytest_gpu  the gpu-marked tests (the captured step against the eager one among them)
#   EXTRA=1 adds the older micro-benchmarks (train_step.py, corruptions.py, evaluate.py);
#   ONLY="steps packing" runs only the named stages (for a short second run on a warm machine).
# OUT_DIR receives at most 6 files: summary.md (stage table and the measured tables), gpu.txt,
# steps.json, packing.json, run.tar.gz (the training run's small files) and logs.tar.gz (every
# stage's output).
#
#   bash benchmarks/gpu_check.sh OUT_DIR [DATA_DIR] [--tiny]
#
# DATA_DIR (default .device-data) must hold cifar10/ or cifar10-webp/; make them with
#   python benchmarks/make_device_data.py .device-data            # 6,000 train + 10,000 test images
#   python benchmarks/make_device_data.py .device-data --webp     # the whole copy, 48 MiB
# --tiny: every stage at toy size on the CPU (test_tiny, a few hundred images), to test the script
# itself (tests/test_gpu_scripts.py); GPU-only switches are reported as such.
set -uo pipefail
args=(); tiny=0
for a in "$@"; do [ "$a" = --tiny ] && tiny=1 || args+=("$a"); done
out="${args[0]:?usage: gpu_check.sh OUT_DIR [DATA_DIR] [--tiny]}"
data="${args[1]:-.device-data}"
wheels="${WHEELS:-.whl}"
if (( tiny )); then
  dev=cpu; arch=test_tiny; budget="${BUDGET_S:-1800}"; scale=4
  gen_n=(--n 50); train_n=(--n-train 256); epochs=1; eval_n=(--n 50)
  speed=(--arch test_tiny --n-train 128 --methods plain,auxiliary --variants eager,optimised,fp32)
  ks=1,2; pack=(--variant fp32)
else
  dev=cuda; arch=resnet18; budget="${BUDGET_S:-540}"; scale=1
  gen_n=(); train_n=(); epochs=5; eval_n=()
  speed=(--arch resnet18 --n-train 6000 --methods auxiliary,plain,augmix,naive_augmentation,per_corruption)
  ks=1,2,4,8; pack=()
fi
cd "$(dirname "$0")/.."
mkdir -p "$out" && out="$(cd "$out" && pwd)"
[ -d "$data" ] || { echo "error: data folder $data not found" >&2; exit 2; }
data="$(cd "$data" && pwd)"
rm -f "$out"/{summary.md,gpu.txt,steps.json,packing.json,run.tar.gz,logs.tar.gz}
work="$(mktemp -d)"; logs="$work/logs"; mkdir -p "$logs"
trap 'rm -rf "$work"' EXIT
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
py=${PYTHON:-python3}
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
log() { echo "[$(elapsed)s] $*" | tee -a "$logs/gpu_check.log"; }
summary() { echo "$*" >> "$out/summary.md"; }

stage() {  # stage NAME LIMIT CMD...: output in logs/NAME.txt; never stops the script
  local name=$1 limit=$(( $2 * scale )); shift 2
  if [ -n "${ONLY:-}" ] && [ "$name" != data ] && [[ " $ONLY " != *" $name "* ]]; then return 0; fi
  local left=$(( budget - $(elapsed) ))
  if (( left < 20 )); then log "skip $name (budget spent)"; summary "| $name | skipped: budget spent | |"; return 1; fi
  (( limit > left )) && limit=$left
  log "start $name (limit ${limit}s)"
  local t0=$(date +%s) rc
  timeout --kill-after=10 "$limit" "$@" > "$logs/$name.txt" 2>&1
  rc=$?
  log "end $name (exit $rc, $(( $(date +%s) - t0 ))s)"
  summary "| $name | $rc | $(( $(date +%s) - t0 )) |"
  return $rc
}

log "setup"
site="$work/site"; mkdir -p "$site"
if compgen -G "$wheels/*.whl" > /dev/null; then
  $py -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheels"/*.whl >> "$logs/setup.txt" 2>&1
fi
export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}"
missing=""
for pair in torch:torch torchvision:torchvision pandas:pandas matplotlib:matplotlib jinja2:jinja2 tqdm:tqdm \
  scipy:scipy cv2:opencv-python-headless skimage:scikit-image; do
  if ! $py -c "import ${pair%%:*}" 2>/dev/null; then
    if [ "${ALLOW_INDEX:-0}" = 1 ]; then
      $py -m pip install -q --target "$site" "${pair##*:}" >> "$logs/setup.txt" 2>&1 || missing="$missing ${pair##*:}"
    else
      missing="$missing ${pair##*:}"
    fi
  fi
done
{
  if [ "$dev" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  else
    echo "CPU ($(nproc) cores; --tiny: the script's own test, no GPU numbers)"
  fi
  $py -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.version.cuda)"
  echo "cpus $(nproc)"
} > "$out/gpu.txt" 2>&1
summary "# GPU check: $(head -1 "$out/gpu.txt")"
summary "$(tail -n +2 "$out/gpu.txt")"
[ -n "$missing" ] && summary "missing Python packages (offline; bring them as wheels in $wheels):$missing"
summary ""
summary "| stage | exit | seconds |"
summary "| --- | --- | --- |"

mkdir -p "$work/data"
if [ -f "$data/cifar10/test_x.npy" ]; then
  ln -s "$data/cifar10" "$work/data/cifar10"
else
  stage data 60 $py benchmarks/make_device_data.py --unpack "$data/cifar10-webp" "$work/data"
fi
d="$work/data"
rba=("$py" -m robustbench_aux)
nproc_=$(nproc)
stage generate 150 "${rba[@]}" corrupt --dataset cifar10 --data "$d" --preset cifar --out "$work/CIFAR-10-C" \
  --device "$dev" --workers "$(( nproc_ > 16 ? 16 : nproc_ ))" --batch-size 10000 "${gen_n[@]}"
stage train 120 "${rba[@]}" train --method auxiliary --recipe reference --arch "$arch" --dataset cifar10 \
  --data "$d" --epochs "$epochs" --seed 0 --device "$dev" --out "$work/run-auxiliary" "${train_n[@]}"
stage evaluate 120 "${rba[@]}" evaluate "$work/run-auxiliary" --corruptions "$work/CIFAR-10-C" \
  --data "$d" --device "$dev" --precision bf16 "${eval_n[@]}"
stage steps 240 $py benchmarks/engine_speed.py steps --device "$dev" --data "$d" "${speed[@]}" \
  --budget $(( 220 * scale )) --limit $(( 120 * scale )) --json "$out/steps.json" --markdown "$work/steps.md"
stage packing 120 $py benchmarks/engine_speed.py packing --device "$dev" --data "$d" --method auxiliary \
  --ks "$ks" "${pack[@]}" "${speed[@]:0:4}" --budget $(( 110 * scale )) --limit $(( 60 * scale )) \
  --json "$out/packing.json" --markdown "$work/packing.md"
stage pytest_gpu 150 $py -m pytest -q -p no:cacheprovider -m gpu tests
if [ "${EXTRA:-0}" = 1 ]; then
  stage train_step_resnet18 90 $py benchmarks/train_step.py --device "$dev" --arch "$arch" --data "$d"
  stage train_step_resnet50 60 $py benchmarks/train_step.py --device "$dev" --arch resnet50 --reps 10
  stage corruptions 90 $py benchmarks/corruptions.py --device "$dev" --data "$d" --batch 10000 --n-ref 20
  stage evaluate_bench 40 $py benchmarks/evaluate.py --device "$dev" --images 20000 --precision bf16
fi

for t in steps packing; do
  if [ -f "$work/$t.md" ]; then summary ""; summary "## $t"; summary ""; cat "$work/$t.md" >> "$out/summary.md"; fi
done
summary ""
summary "wall time: $(elapsed) s (budget $budget s)"
# the run's small files (no weights, no per-image blocks) and every stage's output
run="$work/run-auxiliary"; mkdir -p "$work/run"
for f in metrics.csv config.json eval/summary.json eval/results.csv; do
  [ -f "$run/$f" ] && cp "$run/$f" "$work/run/"
done
tar -C "$work" -czf "$out/run.tar.gz" run
tar -C "$work" -czf "$out/logs.tar.gz" logs
log "done"
