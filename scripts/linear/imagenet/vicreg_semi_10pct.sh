#!/usr/bin/env bash
# SS-FB-VIC: semi-supervised finetuning of VICReg on 10% of ImageNet's labels.
# Source: facebookresearch/vicreg evaluate.py --weights finetune + README (its --lr-classifier is --lr-head) (recipes.md §6).
# Target: none in the reference tables.
# Variant: SS-FB-VIC as in vicreg_semi_1pct.sh, on 10% of the labels: head lr 0.1, backbone lr 0.01.
# Usage: bash scripts/linear/imagenet/vicreg_semi_10pct.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
linear_variant vicreg_semi_1pct.sh \
  linear.name=SS-FB-VIC-10pct linear.label_fraction=10 linear.lr=0.1 linear.backbone_lr=0.01 -- "$@"
