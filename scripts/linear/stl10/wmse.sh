#!/usr/bin/env bash
# LP-SMALL for W-MSE on STL-10: linear layer on precomputed features (Adam, 500 epochs) and 5-nn.
# Source: the W-MSE protocol, htdt/self-supervised eval/{sgd,knn}.py (= CW-RGP base/eval, INTL cifar/eval) (recipes.md §6).
# Target: W-MSE 4 / W-MSE 2 runs: see the header of scripts/pretrain/stl10/wmse{,_2views}.sh.
# Normalisation: the pretraining run's own (W-MSE / CW-RGP statistics).
# Usage: bash scripts/linear/stl10/wmse.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_linear "$@"
exec "$PYTHON" "$ZOO_ROOT/main_linear.py" "${ZOO_ARGS[@]}" \
  linear.name=LP-SMALL linear.protocol=precomputed linear.epochs=500 linear.batch_size=1000 \
  linear.optimizer=adam linear.lr=1e-2 linear.schedule=exponential linear.final_lr=1e-6 linear.weight_decay=5e-6 linear.knn_k=5 \
  "${USER_ARGS[@]}"
