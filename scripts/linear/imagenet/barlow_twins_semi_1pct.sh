#!/usr/bin/env bash
# SS-FB-BT: semi-supervised finetuning of Barlow Twins on 1% of ImageNet's labels.
# Source: facebookresearch/barlowtwins evaluate.py --weights finetune --train-perc 1 (recipes.md §6).
# Target: none in the reference tables.
# Usage: bash scripts/linear/imagenet/barlow_twins_semi_1pct.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_linear "$@"
exec "$PYTHON" "$ZOO_ROOT/main_linear.py" "${ZOO_ARGS[@]}" \
  linear.name=SS-FB-BT-1pct linear.protocol=finetune linear.label_fraction=1 linear.epochs=20 linear.batch_size=256 \
  linear.optimizer=sgd linear.lr=0.5 linear.backbone_lr=0.005 linear.momentum=0.9 linear.weight_decay=0 linear.schedule=cosine \
  'linear.crop_scale=[0.08,1.0]' linear.crop_interpolation=bilinear linear.knn_k=0 \
  "${USER_ARGS[@]}"
