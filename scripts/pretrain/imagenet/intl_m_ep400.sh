#!/usr/bin/env bash
# INTL with multi-crop + EMA on ImageNet: ResNet-50, 6 crops, 400 epochs (the official recipe).
# Source: winci-ai/INTL scripts/ep400_multi-crop_ema.sh + cfg.py, main.py (recipes.md §5.1).
# Protocol: LP-INTL, lr 0.4 (scripts/linear/imagenet/intl_m.sh); semi-supervised: intl_m_semi_{1,10}pct.sh.
# Target: 76.1 top-1 (INTL README).
# GPU count not published (4 assumed); the global batch 256 is the recipe.
# Deviation: IterNorm runs in float32 (the official code runs it under fp16 autocast).
# Variant: the 100-epoch recipe (intl_m_ep100.sh) with lr 0.4 and 400 epochs.
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
# global batch 256 = 4 GPUs x 64 (NUM_GPUS / NUM_NODES change the split only)
pretrain_variant intl_m_ep100.sh 256 4 1 optimizer.lr=0.4 trainer.max_epochs=400 -- "$@"
