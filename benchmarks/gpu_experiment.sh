#!/usr/bin/env bash
# The first real-scale experiment, in one run of about 9 minutes on one H200 (--budget 520 s; a stage
# can overrun it by at most 60 s):
#   ResNet-18 on the full CIFAR-10 copy (50,000 training images): plain, naive augmentation,
#   auxiliary, auxiliary without the penalty (and AugMix if it fits), 2 seeds each, all packed on
#   the GPU, for as many epochs as fit (the reference schedule scaled, the same for every method);
#   the full CIFAR-10-C (19 x 5 x 10,000) generated on the GPU; every run evaluated on it; a report.
#
#   bash benchmarks/gpu_experiment.sh OUT_DIR [--tiny] [--data DIR] [--budget SECONDS] [--per-gpu K]
#
# Stages (each its own process under a time limit; a failed stage stops the ones that need it):
#   setup     python, torch (and the GPU) found; no network is used
#   data      DIR/cifar10-webp (python benchmarks/make_device_data.py .device-data --webp, 49 MiB, travels
#             with the tree) decoded into a work folder, or DIR/cifar10 in the array layout used as is
#   generate  robustbench-aux corrupt --preset cifar of the whole test set on the device
#   mps       whether a CUDA MPS daemon starts and serves a client (else: plain concurrent processes)
#   probe     the grid (benchmarks/gpu_experiment.toml) for one epoch of PROBE images, packed: rates
#   plan      benchmarks/gpu_experiment.py plan: the most epochs that end within the budget
#   train     robustbench-aux sweep --epochs E --per-gpu K (CUDA MPS when it starts)
#   evaluate  robustbench-aux evaluate of every run on the generated CIFAR-10-C, K at once
#   report    robustbench-aux report + README.md (command, device, epochs, wall time first)
# OUT_DIR receives at most 6 files: README.md, summary.md (stage table), experiment.json (plan and
# probe rates), report.tar.gz (gpu-cifar10/: the report, README.md), logs.tar.gz (stage logs, each
# run's config/metrics/eval summary) and gpu.txt.
# --tiny: the same stages at toy size on the CPU (test_tiny, 256 images, 40 test images, at most
# 2 epochs), which tests/test_gpu_experiment.py runs end to end.
set -uo pipefail
cmdline="bash benchmarks/gpu_experiment.sh $*"
out=""; tiny=0; data=".device-data"; budget=""; per_gpu=""
while (( $# )); do
  case "$1" in
    --tiny) tiny=1 ;;
    --data) data="$2"; shift ;;
    --budget) budget="$2"; shift ;;
    --per-gpu) per_gpu="$2"; shift ;;
    -*) echo "error: unknown option $1" >&2; exit 2 ;;
    *) out="$1" ;;
  esac
  shift
done
[ -n "$out" ] || { echo "usage: gpu_experiment.sh OUT_DIR [--tiny] [--data DIR] [--budget S] [--per-gpu K]" >&2; exit 2; }
cd "$(dirname "$0")/.."
repo="$PWD"
mkdir -p "$out" && out="$(cd "$out" && pwd)"
[ -d "$data" ] || { echo "error: data folder $data not found (make it: python benchmarks/make_device_data.py .device-data --webp)" >&2; exit 2; }
data="$(cd "$data" && pwd)"
rm -f "$out"/{README.md,summary.md,experiment.json,report.tar.gz,logs.tar.gz,gpu.txt}
work="$(mktemp -d)"
logs="$work/logs"; mkdir -p "$logs"
trap 'rm -rf "$work"' EXIT
if (( tiny )); then
  # stage limits x4 and a long budget: ~30 small processes on a (possibly shared) CPU
  dev=cpu; arch=test_tiny; n_train=256; probe_n=64; eval_n=40; max_epochs=2; budget=${budget:-2400}
  per_gpu=${per_gpu:-2}; reserve=600; precision=fp32; scale=4; train_precision="fp32 (the reference numerics)"
else
  dev=cuda; arch=resnet18; n_train=50000; probe_n=10000; eval_n=""; max_epochs=210; budget=${budget:-520}
  per_gpu=${per_gpu:-10}; reserve=110; precision=bf16; scale=1
  train_precision="bf16 autocast (a deviation: the reference trains in fp32)"
fi
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-python3}
rba=("$py" -m robustbench_aux)
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
log() { echo "[$(elapsed)s] $*" | tee -a "$logs/experiment.log"; }
summary() { echo "$*" >> "$out/summary.md"; }
failed=""

stage() {  # stage NAME LIMIT CMD...: output in logs/NAME.txt; returns the command's exit status
  local name=$1 limit=$(( $2 * scale )); shift 2
  if [ -n "$failed" ]; then summary "| $name | skipped (after $failed failed) | |"; return 1; fi
  local left=$(( budget + 60 - $(elapsed) ))
  (( limit > left )) && limit=$left
  if (( limit < 5 )); then summary "| $name | skipped: budget spent | |"; failed=$name; return 1; fi
  log "start $name (limit ${limit}s)"
  local t0=$(date +%s) rc
  timeout --kill-after=10 "$limit" "$@" > "$logs/$name.txt" 2>&1
  rc=$?
  log "end $name (exit $rc, $(( $(date +%s) - t0 ))s)"
  summary "| $name | $rc | $(( $(date +%s) - t0 )) |"
  if (( rc != 0 )); then failed=$name; tail -5 "$logs/$name.txt" | sed 's/^/    /' | tee -a "$logs/experiment.log"; fi
  return $rc
}

finish() {
  summary ""
  summary "wall time: $(elapsed) s; command: \`$cmdline\`"
  for f in "$work"/plan.json; do [ -f "$f" ] && cp "$f" "$out/experiment.json"; done
  if [ -d "$work/report/gpu-cifar10" ]; then
    tar -C "$work/report" -czf "$out/report.tar.gz" gpu-cifar10
  fi
  # small files of every run (no weights, no per-image blocks)
  for r in "$work"/runs/*/; do
    [ -d "$r" ] || continue
    local d="$logs/runs/$(basename "$r")"; mkdir -p "$d"
    for f in config.json metrics.csv sweep.log eval/summary.json eval/results.csv; do
      [ -f "$r/$f" ] && cp "$r/$f" "$d/$(basename "$f")"
    done
  done
  tar -C "$work" -czf "$out/logs.tar.gz" logs
  log "done (${failed:+failed at $failed; }outputs in $out)"
}

summary "# gpu_experiment ($( ((tiny)) && echo tiny || echo full))"
summary ""
summary "| stage | exit | seconds |"
summary "| --- | --- | --- |"

# --- setup: the Python packages must be there already (the machine is offline)
check="import torch, torchvision, numpy, pandas, jinja2, matplotlib"
[ "$dev" = cuda ] && check="$check; assert torch.cuda.is_available(), 'no CUDA device'"
stage setup 120 "$py" -c "$check; import robustbench_aux; print('torch', torch.__version__)"
{
  if [ "$dev" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
      || "$py" -c "import torch; print(torch.cuda.get_device_name())"
  else
    echo "CPU ($(nproc) cores, --tiny)"
  fi
  "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>/dev/null
} > "$out/gpu.txt"

# --- data: decode the travelling WebP pack, or use an array-layout copy in place
mkdir -p "$work/data"
if [ -f "$data/cifar10-webp/manifest.json" ]; then
  stage data 120 "$py" benchmarks/make_device_data.py --unpack "$data/cifar10-webp" "$work/data"
elif [ -f "$data/cifar10/train_x.npy" ]; then
  ln -s "$data/cifar10" "$work/data/cifar10"
  summary "| data | 0 (array layout used in place) | 0 |"
else
  summary "| data | missing: $data holds neither cifar10-webp/ nor cifar10/ | |"; failed=data
fi
if [ -z "$failed" ] && (( ! tiny )); then
  got=$("$py" -c "import numpy as np; print(np.load('$work/data/cifar10/train_x.npy', mmap_mode='r').shape[0])")
  [ "$got" = 50000 ] || log "warning: $got training images, not the full 50,000"
  n_train=$got
fi

gen=(corrupt --dataset cifar10 --data "$work/data" --preset cifar --out "$work/CIFAR-10-C" --device "$dev")
(( tiny )) && gen+=(--n "$eval_n") || gen+=(--workers "$(( $(nproc) > 16 ? 16 : $(nproc) ))" --batch-size 10000)
stage generate 150 "${rba[@]}" "${gen[@]}"

grid="$work/grid.toml"
if (( tiny )); then sed '/^set = /d' benchmarks/gpu_experiment.toml > "$grid"; else cp benchmarks/gpu_experiment.toml "$grid"; fi
# CUDA MPS: tried once here (a daemon that hangs would otherwise cost both sweeps their wait)
mps=(--mps off)
if [ "$dev" = cuda ] && (( per_gpu > 1 )); then
  stage mps 90 "$py" -c "from robustbench_aux.sweep.mps import start_mps
m, why = start_mps()
print('MPS works' if m else 'no MPS: ' + why)
m and m.stop()"
  grep -q '^MPS works' "$logs/mps.txt" 2>/dev/null && mps=(--mps auto)
  [ "$failed" = mps ] && failed=""  # without MPS the runs share the GPU as plain processes
fi
# one intra-op thread per training process: K of them share the host's cores
sweep=(env OMP_NUM_THREADS=1 "${rba[@]}" sweep "$grid" --archs "$arch" --dataset cifar10 --data "$work/data"
       --device "$dev" --per-gpu "$per_gpu" "${mps[@]}")
order=$("${rba[@]}" sweep "$grid" --archs "$arch" --dry-run 2>/dev/null | awk '/ train /{for(i=1;i<=NF;i++) if($i=="--out") print $(i+1)}' | xargs -r -n1 basename | paste -sd, -)
stage probe 150 "${sweep[@]}" --epochs 1 --n-train "$probe_n" --out "$work/probe"
(( tiny )) && train_flags=(--n-train "$n_train") || train_flags=()

# --- plan: seconds left for training = budget - elapsed - reserve (evaluation, report, slack); the
# epochs are planned on 85 % of it (the probe's rates are estimates), the stage may use all of it + 90 s
seconds=$(( budget - $(elapsed) - reserve ))
stage plan 60 "$py" benchmarks/gpu_experiment.py plan --probe "$work/probe" --probe-log "$logs/probe.txt" \
  --probe-images "$probe_n" --train-images "$n_train" --seconds "$(( seconds * 85 / 100 ))" --per-gpu "$per_gpu" \
  --max-epochs "$max_epochs" --optional augmix --order "$order" --out "$work/plan.json"
epochs=$(sed -n 's/^EPOCHS=//p' "$logs/plan.txt" 2>/dev/null)
methods=$(sed -n 's/^METHODS=//p' "$logs/plan.txt" 2>/dev/null)
[ -z "$failed" ] && log "plan: $epochs epochs, methods $methods, $per_gpu at once, $seconds s for training"

stage train $(( (seconds + 90) / scale )) "${sweep[@]}" --epochs "${epochs:-1}" --methods "${methods:-plain}" \
  "${train_flags[@]}" --out "$work/runs"
packing=$(grep -m1 '^packing:' "$logs/train.txt" 2>/dev/null | sed 's/^packing: //')

# every finished run, K evaluations at once (one process each; a failure fails the stage)
eval_flags=(--corruptions "$work/CIFAR-10-C" --data "$work/data" --device "$dev" --precision "$precision")
[ -n "$eval_n" ] && eval_flags+=(--n "$eval_n")
printf '%s\n' "$work"/runs/*/final.pt 2>/dev/null | grep -v '\*' | xargs -r -n1 dirname > "$work/evaluate.list"
stage evaluate 150 xargs -a "$work/evaluate.list" -P "$per_gpu" -I{} "${rba[@]}" evaluate {} "${eval_flags[@]}"

title="ResNet-18 on CIFAR-10 (JPEG-q75 copy) / generated CIFAR-10-C, ${epochs:-?} epochs"
(( tiny )) && title="TOY RUN (--tiny, CPU, test_tiny): not a result; ${epochs:-?} epochs"
note="$(head -1 "$out/gpu.txt"); $cmdline; ${epochs:-?} epochs per run; training in ${train_precision}"
stage report 120 "${rba[@]}" report "$work/runs" -o "$work/report/gpu-cifar10" --title "$title" --note "$note"

cat > "$work/notes.md" <<EOF
## What it cannot show

- This is CIFAR-10 (the JPEG-q75 copy; its training images travelled as WebP q95 -- see
  logs.tar.gz's webp_manifest.json for the PSNR), not CIFAR-100: the paper's claims are about CIFAR-100.
- ${epochs:-?} epochs, not the reference's 210 (the schedule is scaled, so the learning rate still
  decays three times): accuracies are below a full run's, and the methods' ranking after a short
  schedule need not hold after a long one.
- Two seeds per method: the spread is a range of two values, not an interval.
- Training used ${train_precision}; the evaluation used ${precision}.
- CIFAR-10-C is generated by this suite's corruption engine, not the published files.
EOF
if [ -z "$failed" ]; then
  stage summarize 60 "$py" benchmarks/gpu_experiment.py summarize --runs "$work/runs" --plan "$work/plan.json" \
    --command "$cmdline" --wall "$(elapsed)" --device-info "$out/gpu.txt" --packing "$packing" \
    --title "$title" --notes "$work/notes.md" --out "$work/report/gpu-cifar10/README.md"
  [ -f "$work/report/gpu-cifar10/README.md" ] && cp "$work/report/gpu-cifar10/README.md" "$out/README.md"
fi
finish
[ -z "$failed" ]
