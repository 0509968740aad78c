#!/usr/bin/env bash
# LP-FB-BT for Barlow Twins on ImageNet: frozen backbone, SGD lr 0.3, wd 1e-6, batch 256, 100 epochs, cosine.
# Source: facebookresearch/barlowtwins evaluate.py (recipes.md §6).
# Target: 73.5 top-1 (barlowtwins README).
# Usage: bash scripts/linear/imagenet/barlow_twins.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_linear "$@"
exec "$PYTHON" "$ZOO_ROOT/main_linear.py" "${ZOO_ARGS[@]}" \
  linear.name=LP-FB-BT linear.protocol=frozen linear.epochs=100 linear.batch_size=256 \
  linear.optimizer=sgd linear.lr=0.3 linear.momentum=0.9 linear.weight_decay=1e-6 linear.schedule=cosine \
  'linear.crop_scale=[0.08,1.0]' linear.crop_interpolation=bilinear linear.knn_k=0 \
  "${USER_ARGS[@]}"
