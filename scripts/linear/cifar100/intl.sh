#!/usr/bin/env bash
# LP-SMALL for INTL on CIFAR-100: linear layer on precomputed features (Adam, 500 epochs) and 5-nn.
# Source: the W-MSE protocol, htdt/self-supervised eval/{sgd,knn}.py (= CW-RGP base/eval, INTL cifar/eval) (recipes.md §6).
# Target: 70.88 top-1, 61.90 5-nn, 92.13 top-5 (INTL README).
# Evaluation images are normalised with CIFAR-10 statistics, as INTL and solo-learn do (also on CIFAR-100).
# Usage: bash scripts/linear/cifar100/intl.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_linear "$@"
exec "$PYTHON" "$ZOO_ROOT/main_linear.py" "${ZOO_ARGS[@]}" \
  linear.name=LP-SMALL linear.protocol=precomputed linear.epochs=500 linear.batch_size=1000 \
  linear.optimizer=adam linear.lr=1e-2 linear.schedule=exponential linear.final_lr=1e-6 linear.weight_decay=5e-6 linear.knn_k=5 \
  'data.mean=[0.4914,0.4822,0.4465]' 'data.std=[0.247,0.243,0.261]' \
  "${USER_ARGS[@]}"
