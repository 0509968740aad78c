#!/usr/bin/env bash
# W-MSE 2 on ImageNet-100: ResNet-18, 2 views, 240 epochs (the official recipe).
# Source: htdt/self-supervised README 'ImageNet-100' commands (its --dataset imagenet is IN-100) (recipes.md §4).
# Protocol: LP-SMALL on Resize 256 / CenterCrop 224 features (scripts/linear/imagenet-100/wmse.sh).
# Target: none in the reference tables (solo-learn's 69.06 is another recipe).
# Variant: W-MSE 4 (wmse.sh) with 2 views at global batch 512.
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
# global batch 512 = 1 GPU x 512 (NUM_GPUS / NUM_NODES change the split only)
pretrain_variant wmse.sh 512 1 1 data.views.0.count=2 -- "$@"
