#!/usr/bin/env bash
# LP-INTL for the multi-crop + EMA INTL checkpoints (scripts/pretrain/imagenet/intl_m_ep*.sh): frozen backbone, SGD lr 0.4, batch 256, 100 epochs, steps at 60 / 80.
# Source: winci-ai/INTL evaluate.py + scripts/ep*_multi-crop_ema.sh (recipes.md §6).
# Target: 73.5 / 75.2 / 76.1 / 76.6 top-1 after 100 / 200 / 400 / 800 epochs (INTL README).
# Usage: bash scripts/linear/imagenet/intl_m.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_linear "$@"
exec "$PYTHON" "$ZOO_ROOT/main_linear.py" "${ZOO_ARGS[@]}" \
  linear.name=LP-INTL linear.protocol=frozen linear.epochs=100 linear.batch_size=256 \
  linear.optimizer=sgd linear.lr=0.4 linear.momentum=0.9 linear.weight_decay=0 linear.schedule=step 'linear.milestones=[60,80]' linear.gamma=0.1 \
  'linear.crop_scale=[0.08,1.0]' linear.crop_interpolation=bilinear linear.knn_k=0 \
  "${USER_ARGS[@]}"
