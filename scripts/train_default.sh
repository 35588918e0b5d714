#!/usr/bin/env bash
# Rebuild the embedded models from nothing, with the project's own commands.
# Usage: bash scripts/train_default.sh [RUNS_DIR] [score|audio|all]      (default: score)
#   score (generate's default, diffv2m/assets/score/MODEL_CARD.md): about 40 min on 2 CPU cores
#     in all (corpus 5, features 7, autoencoder 10, prior ~20); its prior starts its semantic
#     encoder and rhythm predictor from the audio model (diffv2m/assets/default, or this run's).
#   audio (diffv2m/assets/default/MODEL_CARD.md): CPU only about 2.5 h on 2 cores (the prior
#     alone is ~1 h there); with a CUDA GPU the prior takes ~2 min (`--device auto` picks it).
set -euo pipefail
RUNS=${1:-runs}
WHAT=${2:-score}
AE_STEPS=${AE_STEPS:-3000}
PRIOR_STEPS=${PRIOR_STEPS:-1000}
PRIOR_DEVICE=${PRIOR_DEVICE:-auto}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

train_score() {
  # the score family: piano-roll autoencoder (~10 min), then the same prior on its latents
  # (~20 min), one thread each (faster than two on a shared 2-core machine)
  OMP_NUM_THREADS=1 diffv2m train autoencoder "$RUNS/corpus/manifest.jsonl" \
      --run-dir "$RUNS/score_ae" --config score --steps 2500 --batch-size 32 \
      --segment-seconds 4 --lr 2e-3 --kl-weight 1e-3 --posterior-noise 0.3 --transpose 3 \
      --save-every 500 --val-samples 8
  diffv2m explore-latents "$RUNS/corpus/manifest.jsonl" \
      --autoencoder "$RUNS/score_ae/autoencoder.safetensors" -o "$RUNS/score_latents.png"
  OMP_NUM_THREADS=1 diffv2m train prior "$RUNS/corpus/manifest.jsonl" \
      --autoencoder "$RUNS/score_ae/autoencoder.safetensors" --run-dir "$RUNS/score_prior" \
      --config score --init "$AUDIO_MODEL" --init-parts semantic rhythm \
      --freeze semantic rhythm --steps 1000 --batch-size 32 --lr 1e-3 --warmup 200 \
      --save-every 250 --val-samples 0 --device cpu
  mkdir -p diffv2m/assets/score
  cp "$RUNS/score_prior/model.safetensors" diffv2m/assets/score/model.safetensors
  # the picture's mood reader (colour grade -> major/minor), seconds; export copies it
  diffv2m train mood "$RUNS/corpus/manifest.jsonl" --config score \
      --out diffv2m/assets/score/mood_reader.safetensors
  diffv2m export onnx diffv2m/assets/score/model.safetensors -o diffv2m/assets/score/onnx
  python benchmarks/eval_score_model.py "$RUNS/corpus/manifest.jsonl" -o "$RUNS/eval_score"
}

diffv2m corpus build "$RUNS/corpus" --minutes 60 --seed 1 --workers 2
diffv2m features extract "$RUNS/corpus/manifest.jsonl"
AUDIO_MODEL=diffv2m/assets/default/model.safetensors
if [ "$WHAT" = score ]; then
  train_score
  exit 0
fi
if python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  # the shipped recipe: one GPU, 5 min (the shipped run read a pack of every 5th train clip)
  diffv2m train autoencoder "$RUNS/corpus/manifest.jsonl" --run-dir "$RUNS/ae" --config small \
      --pack "$RUNS/audio.npz" --steps "${AE_STEPS:-3500}" --batch-size 32 --segment-seconds 1.0 \
      --lr 1.5e-3 --kl-weight 1e-5 --posterior-noise 0.1 --save-every 500 --device cuda
else
  # the CPU recipe: 2 gloo processes, ~32 min on 2 cores (val MR-STFT 1.84 vs 1.69 on a GPU)
  python -m torch.distributed.run --nproc_per_node 2 -m diffv2m train autoencoder \
      "$RUNS/corpus/manifest.jsonl" --run-dir "$RUNS/ae" --config small --steps "$AE_STEPS" \
      --batch-size 8 --segment-seconds 0.5 --lr 1.5e-3 --kl-weight 1e-5 --posterior-noise 0.1 \
      --save-every 250 --device cpu
fi
diffv2m train prior "$RUNS/corpus/manifest.jsonl" --autoencoder "$RUNS/ae/autoencoder.safetensors" \
    --run-dir "$RUNS/prior" --config small --steps "$PRIOR_STEPS" --batch-size 64 --lr 1e-3 \
    --warmup 300 --save-every 250 --device "$PRIOR_DEVICE"
diffv2m explore-latents "$RUNS/corpus/manifest.jsonl" --autoencoder "$RUNS/ae/autoencoder.safetensors" \
    -o "$RUNS/latents.png"
cp "$RUNS/prior/model.safetensors" diffv2m/assets/default/model.safetensors
AUDIO_MODEL=diffv2m/assets/default/model.safetensors
diffv2m export onnx diffv2m/assets/default/model.safetensors -o diffv2m/assets/default/onnx
python benchmarks/eval_heldout.py "$RUNS/corpus/manifest.jsonl" -o "$RUNS/eval"
[ "$WHAT" = all ] && train_score
