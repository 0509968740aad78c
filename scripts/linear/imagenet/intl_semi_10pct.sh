#!/usr/bin/env bash
# SS-INTL: semi-supervised finetuning on 10% of ImageNet's labels, for scripts/pretrain/imagenet/intl.sh checkpoints.
# Source: winci-ai/INTL evaluate.py --weights finetune (recipes.md §6); SimCLR's subset lists, downloaded on first use.
# Target: none in the reference tables.
# Constant lr: INTL's step milestones (60, 80) are never reached in 20 epochs.
# Usage: bash scripts/linear/imagenet/intl_semi_10pct.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_linear "$@"
exec "$PYTHON" "$ZOO_ROOT/main_linear.py" "${ZOO_ARGS[@]}" \
  linear.name=SS-INTL-10pct linear.protocol=finetune linear.label_fraction=10 linear.epochs=20 linear.batch_size=256 \
  linear.optimizer=sgd linear.lr=0.2 linear.backbone_lr=0.006 linear.momentum=0.9 linear.weight_decay=0 linear.schedule=constant \
  'linear.crop_scale=[0.08,1.0]' linear.crop_interpolation=bilinear linear.knn_k=0 \
  "${USER_ARGS[@]}"
