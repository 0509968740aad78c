#!/usr/bin/env bash
# LP-SOLO for SimSiam on ImageNet-100: frozen backbone, SGD lr 30.0, batch 256, 100 epochs, steps at 60 / 80.
# Source: vturrisi/solo-learn scripts/linear/imagenet-100/*.yaml + main_linear.py (recipes.md §6).
# Target: 78.72 top-1 offline (solo-learn README).
# Usage: bash scripts/linear/imagenet-100/simsiam.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_linear "$@"
exec "$PYTHON" "$ZOO_ROOT/main_linear.py" "${ZOO_ARGS[@]}" \
  linear.name=LP-SOLO linear.protocol=frozen linear.epochs=100 linear.batch_size=256 \
  linear.optimizer=sgd linear.lr=30.0 linear.momentum=0.9 linear.weight_decay=0 linear.schedule=step 'linear.milestones=[60,80]' linear.gamma=0.1 \
  'linear.crop_scale=[0.08,1.0]' linear.crop_interpolation=bilinear linear.knn_k=0 \
  trainer.precision=16-mixed \
  "${USER_ARGS[@]}"
