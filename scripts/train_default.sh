#!/usr/bin/env bash
# Rebuild the embedded default model from nothing, with the project's own commands, on a CPU.
# Usage: bash scripts/train_default.sh [RUNS_DIR]   (about 1.5 h on a 2-core CPU; see MODEL_CARD.md)
set -euo pipefail
RUNS=${1:-runs}
AE_STEPS=${AE_STEPS:-900}
PRIOR_STEPS=${PRIOR_STEPS:-1500}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

diffv2m corpus build "$RUNS/corpus" --minutes 60 --seed 1 --workers 2
diffv2m features extract "$RUNS/corpus/manifest.jsonl"
diffv2m train autoencoder "$RUNS/corpus/manifest.jsonl" --run-dir "$RUNS/ae" --config small \
    --steps "$AE_STEPS" --batch-size 4 --segment-seconds 0.5 --lr 1e-3 --save-every 100
diffv2m train prior "$RUNS/corpus/manifest.jsonl" --autoencoder "$RUNS/ae/autoencoder.safetensors" \
    --run-dir "$RUNS/prior" --steps "$PRIOR_STEPS" --batch-size 8 --lr 1e-3 --warmup 100 \
    --save-every 100
diffv2m explore-latents "$RUNS/corpus/manifest.jsonl" --autoencoder "$RUNS/ae/autoencoder.safetensors" \
    -o "$RUNS/latents.png"
cp "$RUNS/prior/model.safetensors" diffv2m/assets/default/model.safetensors
diffv2m export onnx diffv2m/assets/default/model.safetensors -o diffv2m/assets/default/onnx
python benchmarks/eval_heldout.py "$RUNS/corpus/manifest.jsonl" -o "$RUNS/eval"
