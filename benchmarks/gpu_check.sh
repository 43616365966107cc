#!/usr/bin/env bash
# GPU check: on a bare Linux machine with one NVIDIA GPU and only package registries reachable,
# set up from this working tree, run the corruption / training-step / evaluation benchmarks and a
# short real training, and write every result into the folder given as the first argument.
# Budget: under 8 minutes on an H100-class GPU.
#
#   bash benchmarks/gpu_check.sh OUT_DIR [DATA_DIR]
#
# DATA_DIR (default .device-data) must hold cifar10/ in the array layout; make a subset small enough
# to travel with the tree (about 40 MB) with:  python benchmarks/make_device_data.py .device-data
set -uo pipefail
out="${1:?usage: gpu_check.sh OUT_DIR [DATA_DIR]}"
data="${2:-.device-data}"
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
start=$(date +%s)
log() { echo "[$(( $(date +%s) - start ))s] $*" | tee -a "$out/gpu_check.log"; }

log "setup"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
py=python3
if ! $py -c "import torch, torchvision; assert torch.cuda.is_available()" 2>/dev/null; then
  $py -m pip install -q torch torchvision 2>&1 | tail -2
fi
$py -m pip install -q --no-deps -e . 2>&1 | tail -2
$py -m pip install -q pandas matplotlib jinja2 tqdm "setuptools<82" imagecorruptions 2>&1 | tail -2
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
  | tee -a "$out/gpu.txt"

run() {  # run NAME TIMEOUT CMD...: one stage, its output in OUT/NAME.txt, never stops the script
  local name=$1 limit=$2; shift 2
  log "start $name"
  timeout "$limit" "$@" > "$out/$name.txt" 2>&1
  log "end $name (exit $?)"
}

run corruptions 120 $py benchmarks/corruptions.py --device cuda
run train_step 90 $py benchmarks/train_step.py --device cuda
run evaluate 90 $py benchmarks/evaluate.py --device cuda
run train_real 150 $py -m robustbench_aux train --method auxiliary --recipe reference --arch resnet18 \
  --dataset cifar10 --data "$data" --epochs 5 --seed 0 --device cuda --out "$out/run-auxiliary-resnet18"
run pytest_gpu 60 $py -m pytest -q -m gpu
rm -f "$out"/run-auxiliary-resnet18/*.pt  # weights need not travel back
log "done"
