#!/usr/bin/env bash
# LP-INTL for the multi-crop + EMA INTL checkpoints (scripts/pretrain/imagenet/intl_m_ep*.sh): frozen backbone, SGD lr 0.4, batch 256, 100 epochs, steps at 60 / 80.
# Source: winci-ai/INTL evaluate.py + scripts/ep*_multi-crop_ema.sh (recipes.md §6).
# Target: 73.5 / 75.2 / 76.1 / 76.6 top-1 after 100 / 200 / 400 / 800 epochs (INTL README).
# Variant: LP-INTL as in intl.sh, with lr 0.4.
# Usage: bash scripts/linear/imagenet/intl_m.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
linear_variant intl.sh linear.lr=0.4 -- "$@"
