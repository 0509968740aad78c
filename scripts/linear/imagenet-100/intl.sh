#!/usr/bin/env bash
# LP-INTL for INTL on ImageNet-100: frozen backbone, SGD lr 0.2, batch 256, 100 epochs, steps at 60 / 80; plus 5-nn.
# Source: winci-ai/INTL evaluate.py + scripts/in100.sh (recipes.md §6); the 5-nn is LP-SMALL's [P].
# Target: 81.68 top-1, 73.46 5-nn, 95.42 top-5 (INTL README).
# Usage: bash scripts/linear/imagenet-100/intl.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_linear "$@"
exec "$PYTHON" "$ZOO_ROOT/main_linear.py" "${ZOO_ARGS[@]}" \
  linear.name=LP-INTL linear.protocol=frozen linear.epochs=100 linear.batch_size=256 \
  linear.optimizer=sgd linear.lr=0.2 linear.momentum=0.9 linear.weight_decay=0 linear.schedule=step 'linear.milestones=[60,80]' linear.gamma=0.1 \
  'linear.crop_scale=[0.08,1.0]' linear.crop_interpolation=bilinear linear.knn_k=5 \
  "${USER_ARGS[@]}"
