#!/usr/bin/env bash
# GPU check: on a bare Linux machine with one NVIDIA GPU (package registries at most), set up from
# this working tree, then measure in this order, each stage in its own process with a time limit:
#   generate  the full-size CIFAR-C workload (19 corruptions x 5 severities x 10,000 test images =
#             950,000 images) with `robustbench-aux corrupt --device cuda`, end to end (files written)
#   train     a short real training run (auxiliary, ResNet-18, 5 epochs on the data subset)
#   evaluate  that run on the generated CIFAR-C (950,000 + 10,000 images), bf16, end to end
#   benchmarks  train_step.py (ResNet-18 and ResNet-50), the GPU tests, corruptions.py, evaluate.py
# and write every result into OUT_DIR (summary.md first). The whole check stops starting new stages
# once BUDGET_S seconds (default 450) have passed, so it ends within 8 minutes on an H100-class GPU.
#
#   bash benchmarks/gpu_check.sh OUT_DIR [DATA_DIR]
#
# DATA_DIR (default .device-data) must hold cifar10/ in the array layout with 10,000 test images;
# make a subset small enough to travel with the tree (about 50 MB) with
#   python benchmarks/make_device_data.py .device-data     # 6,000 train + 10,000 test images
# Python packages: those installed are used; missing ones come from wheels in $WHEELS (default
# .whl) when present, else from the package index, into a temporary folder (nothing system-wide).
set -uo pipefail
out="${1:?usage: gpu_check.sh OUT_DIR [DATA_DIR]}"
data="${2:-.device-data}"
budget="${BUDGET_S:-450}"
wheels="${WHEELS:-.whl}"
dev="${DEVICE:-cuda}"    # DEVICE=cpu ARCH=resnet8: only to try the script itself without a GPU
arch="${ARCH:-resnet18}"
cd "$(dirname "$0")/.."
mkdir -p "$out"
out="$(cd "$out" && pwd)"
data="$(cd "$data" && pwd)" || { echo "error: data folder $2 not found" >&2; exit 2; }
work="$(mktemp -d)"
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=5 ROBUSTBENCH_AUX_SHARED_DATA="$data"
start=$(date +%s)
log() { echo "[$(( $(date +%s) - start ))s] $*" | tee -a "$out/gpu_check.log"; }
summary() { echo "$*" >> "$out/summary.md"; }

log "setup"
py=python3
site="$work/site"
mkdir -p "$site"
if compgen -G "$wheels/*.whl" > /dev/null; then
  $py -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheels"/*.whl 2>&1 | tail -2
fi
export PYTHONPATH="$PWD:$site"
if ! $py -c "import torch, torchvision; assert torch.cuda.is_available() or '$dev' == 'cpu'" 2>/dev/null; then
  $py -m pip install -q --target "$site" torch torchvision 2>&1 | tail -2
fi
for pair in pandas:pandas matplotlib:matplotlib jinja2:jinja2 tqdm:tqdm scipy:scipy cv2:opencv-python-headless \
  skimage:scikit-image imagecorruptions:imagecorruptions; do
  $py -c "import ${pair%%:*}" 2>/dev/null || $py -m pip install -q --target "$site" "${pair##*:}" 2>&1 | tail -2
done
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
  $py -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.version.cuda)"
  echo "cpus $(nproc)"
} > "$out/gpu.txt" 2>&1
summary "# GPU check: $(head -1 "$out/gpu.txt")"
summary "$(tail -n +2 "$out/gpu.txt")"
summary ""
summary "| stage | exit | seconds |"
summary "| --- | --- | --- |"

stage() {  # stage NAME LIMIT CMD...: output in OUT/NAME.txt; never stops the script
  local name=$1 limit=$2; shift 2
  local left=$(( budget - ($(date +%s) - start) ))
  if (( left < 20 )); then
    log "skip $name (budget spent)"; summary "| $name | skipped: budget spent | |"; return
  fi
  (( limit > left )) && limit=$left
  log "start $name (limit ${limit}s)"
  local t0 rc
  t0=$(date +%s.%N)
  timeout "$limit" "$@" > "$out/$name.txt" 2>&1
  rc=$?
  local secs
  secs=$($py -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
  log "end $name (exit $rc, ${secs}s)"
  summary "| $name | $rc | $secs |"
}

rba=("$py" -m robustbench_aux)
nproc_=$(nproc)
stage generate 150 "${rba[@]}" corrupt --dataset cifar10 --data "$data" --preset cifar --out "$work/CIFAR-10-C" \
  --device "$dev" --workers "$(( nproc_ > 16 ? 16 : nproc_ ))" --batch-size 10000
du -sh "$work/CIFAR-10-C" >> "$out/generate.txt" 2>&1
stage train 120 "${rba[@]}" train --method auxiliary --recipe reference --arch "$arch" --dataset cifar10 \
  --data "$data" --epochs 5 --seed 0 --device "$dev" --out "$work/run-auxiliary"
stage evaluate 120 "${rba[@]}" evaluate "$work/run-auxiliary" --corruptions "$work/CIFAR-10-C" \
  --data "$data" --device "$dev" --precision bf16
stage train_step_resnet18 90 $py benchmarks/train_step.py --device "$dev" --arch "$arch" --data "$data"
stage pytest_gpu 90 $py -m pytest -q -p no:cacheprovider -m gpu tests
stage train_step_resnet50 60 $py benchmarks/train_step.py --device "$dev" --arch resnet50 --reps 10
stage corruptions 90 $py benchmarks/corruptions.py --device "$dev" --data "$data" --batch 10000 --n-ref 20
stage evaluate_bench 40 $py benchmarks/evaluate.py --device "$dev" --images 20000 --precision bf16

# the run's small files come back (no weights, no per-image blocks)
run="$work/run-auxiliary"
for f in metrics.csv config.json eval/summary.json eval/results.csv; do
  [ -f "$run/$f" ] && cp "$run/$f" "$out/run_$(basename "$f")"
done
log "done"
rm -rf "$work"
