#!/usr/bin/env bash
# GPU check, ours against nnU-Net 2.8.1 on the same machine (one lent H100). At most about 8 minutes: a step that
# would start past BUDGET seconds is skipped (and recorded as skipped), a running step is cut at BUDGET + 30 s.
# The measurements are in bench/gpu_check_helpers.py (one process per measurement); this script orders them.
#
# Prepare on the CPU machine, in the checkout (both folders git-ignored, e.g. listed in .git/info/exclude):
#   bash ../shared/tools/device/make_device_wheels.sh .devwheels --with-reference     # + the nnunetv2 wheel
#   mkdir -p .devdata && cp -r ../shared/datasets/Task04_Hippocampus .devdata/           # 16 MB
#   printf '/.devwheels/\n/.devdata/\n' >> .git/info/exclude
# Run: device `run`, command "bash bench/gpu_check.sh", carry [".devwheels", ".devdata"], timeout_s 560.
# scikit-learn and seaborn may be missing there (neither is among the wheels): where they are, the helper puts in
# a KFold identical to sklearn's (the split) and an empty seaborn (plots are never reached); "shims" records it.
# Check on the CPU (no install, CUDA mocked, tiny counts): tests/tools/test_gpu_check.py, or by hand
#   python bench/gpu_check_helpers.py msd /tmp/gc 6 16   # a tiny Hippocampus-like task in /tmp/gc
#   GC_MOCK_CUDA=1 GC_SKIP_INSTALL=1 PY=.venv/bin/python PY_REF=/work/ref/.venv-ref/bin/python \
#   MSD=/tmp/gc/Task04_Hippocampus N_ITERS=2 GC_WARM=1 N_PROC=1 GC_PRED_NP=1 GC_ONE_SHAPE=16,16,16 \
#   GC_BIG_SHAPE=16,20,16 bash bench/gpu_check.sh
#
# Steps, in order of priority (a failing step is logged and recorded; the others still run):
#   1 install the wheels, record versions, GPU and compiler
#   2 MSD -> Dataset004_Hippocampus, plan + preprocess CFGS (ours); N_PRED training images as test set
#   3 training, eager, ours and ref, 3d_fullres then 2d: ms/iteration (N_ITERS steps, one synchronisation at the
#     end) with the real loader and with one batch reused (GPU-bound), data wait, peak GPU memory, loss curve;
#     ours' 3d run saves the model of step 4
#   4 prediction with that model, ours and ref: N_PRED cases end to end; sliding window on one Hippocampus-sized
#     case and on a 128x160x128 image, results on and off the device; voxel agreement ours vs ref
#   5 ours with the augmentation on the device (nnUNet_augment_on_device=1; the reference has no such switch),
#     eager, 3d_fullres and 2d; the result records whether the trainer reported it (augment_on_device_reported)
#   6 training with torch.compile (nnUNet_compile=1), ours and ref, 3d_fullres then 2d, then ours with the
#     augmentation on the device; first_iters_s holds the compile time (COMPILE=0 leaves the step out)
#   7 ours' slab path (max_ram_gb tiny) on 5 cases: time, and agreement with ours' in-RAM predictions
# Output: $OUT/gpu_check.json ("table": headline numbers, ours/ref ratios, skipped and failed steps; "steps": rc
# and wall time of each step; then every measurement), $OUT/logs/*.log (tails).
#
# Knobs (environment): BUDGET (440 s), N_ITERS (40 timed iterations), GC_WARM (3 untimed), N_PRED (20 cases),
# N_PROC (12 preprocessing processes), N_PROC_DA (nnUNet_n_proc_DA, default N_PROC), GC_PRED_NP (3), PY / PY_REF
# (interpreters of ours / the reference), IMPLS ("ours ref"), CFGS ("3d_fullres 2d"), COMPILE (1: step 6 runs),
# GC_SKIP_INSTALL=1, GC_MOCK_CUDA=1 (CPU, see the helper), MSD, WHEELS, OUT, GC_WORK; GC_ONE_SHAPE, GC_BIG_SHAPE,
# GC_ONE_REPS, GC_BIG_REPS, GC_MIRROR (see the helper).
{  # the whole script is read before it runs: editing the file meanwhile cannot change a running check
set -uo pipefail
BUDGET=${BUDGET:-440}; N_ITERS=${N_ITERS:-40}; N_PRED=${N_PRED:-20}; N_PROC=${N_PROC:-12}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WHEELS=${WHEELS:-$REPO/.devwheels}; MSD=${MSD:-$REPO/.devdata/Task04_Hippocampus}
OUT=${OUT:-/tmp/gpu_check_out}; W=${GC_WORK:-/tmp/gpu_check}
PY=${PY:-python3}; PY_REF=${PY_REF:-$PY}; IMPLS=${IMPLS:-ours ref}; CFGS=${CFGS:-3d_fullres 2d}; COMPILE=${COMPILE:-1}
HELPER=$REPO/bench/gpu_check_helpers.py
rm -rf "$W" "$OUT/parts" "$OUT/logs" "$OUT/gpu_check.json"  # every run starts from nothing (a rerun, a local run)
mkdir -p "$OUT/parts" "$OUT/logs" "$W"
export nnUNet_raw=$W/raw nnUNet_preprocessed=$W/preprocessed nnUNet_results=$W/results_ours
export nnUNet_n_proc_DA=${N_PROC_DA:-$N_PROC} OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
export GC_OUT=$OUT GC_WORK=$W GC_ITERS=$N_ITERS

step() {  # step NAME NEEDED_S TIMEOUT_S CMD...: run CMD unless the budget is spent; record rc and wall time
  local name=$1 need=$2 limit=$3; shift 3
  if (( SECONDS + need > BUDGET )); then
    echo "{\"skipped\": \"budget ($SECONDS s used of $BUDGET, $need s needed)\"}" > "$OUT/parts/$name.step.json"
    echo "[$SECONDS s] $name skipped (budget)"; return 1
  fi
  (( limit > BUDGET + 30 - SECONDS )) && limit=$(( BUDGET + 30 - SECONDS ))
  local t0=$SECONDS rc
  timeout -k 5 "$limit" "$@" > "$OUT/logs/$name.log" 2>&1; rc=$?
  echo "{\"rc\": $rc, \"wall_s\": $((SECONDS - t0))}" > "$OUT/parts/$name.step.json"
  echo "[$SECONDS s] $name rc=$rc"; return $rc
}
has() { [[ " $IMPLS " == *" $1 "* ]]; }
py_of() { if [ "$1" = ref ]; then echo "$PY_REF"; else echo "$PY"; fi; }

# 1 install (as ../shared/tools/device/README.md says) and record the environment
if [ "${GC_SKIP_INSTALL:-0}" != 1 ]; then
  { mkdir -p /tmp/site && tar -xJf "$WHEELS/simpleitk.tar.xz" -C /tmp/site \
    && "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHEELS"/*.whl; } \
    > "$OUT/logs/install.log" 2>&1 || echo "install failed, see logs/install.log"
  export PYTHONPATH=/tmp/site:$REPO
else
  export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
fi
step env 20 60 "$PY" "$HELPER" env

# 2 data: MSD -> Dataset004_Hippocampus, plan and preprocess with ours; N_PRED training images as a test set
cvt='import sys; from nnunet.cli.convert import convert_msd_main as m; sys.exit(m(sys.argv[1:]))'
pp='import sys; from nnunet.cli.plan_and_preprocess import plan_and_preprocess_main as m; sys.exit(m(sys.argv[1:]))'
step convert 30 90 "$PY" -c "$cvt" -i "$MSD" -overwrite_id 4 -np "$N_PROC" --no_pbar
# shellcheck disable=SC2086  # CFGS is a list
step preprocess 60 180 "$PY" -c "$pp" -d 4 -c $CFGS -np "$N_PROC" -npfp "$N_PROC" --no_pbar
mkdir -p "$W/imagesTs"
find "$nnUNet_raw/Dataset004_Hippocampus/imagesTr" -name '*_0000.nii.gz' 2>/dev/null | sort | head -n "$N_PRED" \
  | xargs -r cp -t "$W/imagesTs"

train() {  # train IMPL CFG COMPILE AUGDEV NEEDED_S TIMEOUT_S
  local name="train_$1_$2_eager"
  [ "$3" = 1 ] && name="train_$1_$2_compile"
  [ "$4" = 1 ] && name="${name}_augdev"
  step "$name" "$5" "$6" "$(py_of "$1")" "$HELPER" train "$1" "$2" "$3" "$4" "$name"
}

# 3 training, eager (ours first: its 3d run writes the model that step 4 predicts with)
for cfg in $CFGS; do for impl in $IMPLS; do train "$impl" "$cfg" 0 0 30 120; done; done

# 4 prediction (needs ours' 3d_fullres model)
for impl in $IMPLS; do step "predict_$impl" 40 150 "$(py_of "$impl")" "$HELPER" predict "$impl" "predict_$impl"; done

# 5 ours, augmentation on the device, eager
if has ours; then for cfg in $CFGS; do train ours "$cfg" 0 1 30 120; done; fi

# 6 torch.compile (inductor caches kept apart per implementation, so each first iteration pays its own compile)
if [ "$COMPILE" = 1 ]; then
  for cfg in $CFGS; do for impl in $IMPLS; do train "$impl" "$cfg" 1 0 90 200; done; done
  if has ours; then for cfg in $CFGS; do train ours "$cfg" 1 1 90 200; done; fi
fi

# 7 ours' slab path
if has ours; then step slab_ours 30 90 "$PY" "$HELPER" slab slab_ours; fi

"$PY" "$HELPER" merge > "$OUT/logs/merge.log" 2>&1; cat "$OUT/logs/merge.log"
for f in "$OUT"/logs/*.log; do tail -c 20000 "$f" > "$f.tmp" && mv "$f.tmp" "$f"; done  # keep what returns small
echo "done in $SECONDS s"
exit 0
}
