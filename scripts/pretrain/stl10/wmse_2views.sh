#!/usr/bin/env bash
# W-MSE 2 on STL-10: ResNet-18, 2 views, 2000 epochs (the official recipe).
# Source: htdt/self-supervised README commands + cfg.py (recipes.md §2, §3).
# Protocol: LP-SMALL (scripts/linear/stl10/wmse.sh).
# Target: 90.36 / 87.10 top-1 / 5-nn (CW-RGP table copy).
# Variant: W-MSE 4 (wmse.sh) with 2 views, w_iter 4, at global batch 512.
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
# global batch 512 = 1 GPU x 512 (NUM_GPUS / NUM_NODES change the split only)
pretrain_variant wmse.sh 512 1 1 data.views.0.count=2 method.w_iter=4 -- "$@"
