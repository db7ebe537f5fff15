#!/usr/bin/env bash
# Issue #22's measurements on a GPU machine, in parts that each fit one 10-minute device call:
#   tests       the CUDA tests (python -m pytest -m cuda): every GPU path against its CPU path or grad-cam
#   assignment  the assignment config (Broden-sized synthetic probe, 20k concepts, LIME 1000 x 3 seeds, every CAM,
#               deletion/insertion, sanity check) through bench_pipeline.py: wall per stage, each explain method
#               against its floor, peak GPU memory per stage, the whole run (goal: under 5 minutes)
#   reference   CLIP-Dissect's way on the same probe and concepts (bench_reference.py), to set against the dissect
#               stage's time from 'assignment'
#   decode      the probe pass with PIL decoding in workers vs nvJPEG (bench_dissect.py --case probe)
#   memory      the dissect and explain stages under a 16 GB cap (a smaller GPU, batch sizes measured under it)
#   overlap     LIME's producer thread and quickshift in threads on this machine's CPUs (bench --case overlap)
#   render      the report stage of the smoke config on this machine's CPUs: serial, pooled, warm, a rerun
# Prepare first, on the CPU machine: bench/gpu_prepare.sh (wheels in .whl/, the mirror's part in .gpu/data).
#   bash bench/gpu_check.sh tests assignment     # then: bash bench/gpu_check.sh reference decode overlap render
# ('memory' last, if device time is left: it reruns two stages of the assignment config).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1 XAI_MIRROR=$PWD/.gpu/data XAI_DATA_DIR=/tmp/xai-data TORCH_HOME=/tmp/torch
PY=${PYTHON:-python3}
PROBE=/tmp/broden-synthetic
CONCEPTS=$PWD/.gpu/data/clip-dissect-concepts/20k.txt

if [ -d .whl ] && ! "$PY" -c "import pytorch_grad_cam, lime, open_clip, pydantic, pooch" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, \
'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"

probe() {  # the Broden-sized probe, made once per machine (about 15 s on 16 cores)
  [ "$(find "$PROBE" -name '*.jpg' 2>/dev/null | wc -l)" -ge 63305 ] || timeout 120 "$PY" bench/make_probe.py "$PROBE"
}
config() {  # the assignment config with the synthetic probe
  sed "s#^  probe: broden#  probe: $PROBE#" configs/assignment.yaml > /tmp/assignment_gpu.yaml
  grep -q "probe: $PROBE" /tmp/assignment_gpu.yaml || { echo "could not set the probe in the config"; exit 2; }
}
section() { echo; echo "=== $1 ($(date +%T))"; }

for part in "$@"; do
  case $part in
    tests)
      section "CUDA tests"
      probe &  # made while the tests run
      timeout 200 "$PY" -m pytest -q -p no:xdist -m cuda -W ignore::DeprecationWarning tests/ 2>&1 | tail -25
      wait ;;
    assignment)
      section "assignment config, random weights, synthetic Broden-sized probe"
      probe; config
      timeout 420 "$PY" bench/bench_pipeline.py --device cuda --config /tmp/assignment_gpu.yaml \
        --mirror "$XAI_MIRROR" --scratch /tmp/xai-bench-assignment ;;
    reference)
      section "CLIP-Dissect's way (its batch sizes, fp16 CLIP, three decodes)"
      probe
      timeout 300 "$PY" bench/bench_reference.py --device cuda --probe "$PROBE" --concepts "$CONCEPTS" ;;
    decode)
      section "probe pass: PIL in workers vs nvJPEG (5,000 images)"
      for decode in cpu device; do
        timeout 120 "$PY" bench/bench_dissect.py --case probe --device cuda --images 5000 --repeats 1 \
          --batch-sizes 128,256 --decode "$decode" 2>&1 | grep -E "==|one pass|floor|decod"
      done ;;
    memory)
      section "dissect and explain under a 16 GB cap"
      probe; config
      timeout 420 "$PY" bench/bench_pipeline.py --device cuda --config /tmp/assignment_gpu.yaml \
        --mirror "$XAI_MIRROR" --scratch /tmp/xai-bench-16gb --stages dissect,explain --gpu-memory-gb 16 ;;
    render)
      section "report stage on this machine's CPUs (smoke config, synthetic probe)"
      probe
      sed "s#^  probe: imagenet-samples#  probe: $PROBE#" configs/smoke.yaml > /tmp/smoke_gpu.yaml
      timeout 400 "$PY" bench/bench_pipeline.py --case render --device cuda --config /tmp/smoke_gpu.yaml \
        --mirror "$XAI_MIRROR" --scratch /tmp/xai-bench-render ;;
    overlap)
      section "LIME's CPU-side overlap and quickshift threads on this machine's CPUs"
      timeout 150 "$PY" bench/bench_pipeline.py --case overlap --probe-limit 64 ;;
    *) echo "unknown part $part (tests, assignment, reference, decode, memory, overlap, render)"; exit 2 ;;
  esac
done
