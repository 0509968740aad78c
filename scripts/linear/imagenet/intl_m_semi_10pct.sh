#!/usr/bin/env bash
# SS-INTL: semi-supervised finetuning on 10% of ImageNet's labels, for scripts/pretrain/imagenet/intl_m_ep*.sh checkpoints.
# Source: winci-ai/INTL evaluate.py --weights finetune (recipes.md §6); SimCLR's subset lists, downloaded on first use.
# Target: none in the reference tables.
# Constant lr: INTL's step milestones (60, 80) are never reached in 20 epochs.
# Variant: SS-INTL as in intl_semi_10pct.sh, with the multi-crop checkpoints' backbone lr 0.004.
# Usage: bash scripts/linear/imagenet/intl_m_semi_10pct.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
linear_variant intl_semi_10pct.sh linear.backbone_lr=0.004 -- "$@"
