#!/usr/bin/env bash
# W-MSE 4 on CIFAR-100: ResNet-18, 4 views, 1000 epochs (the official recipe).
# Source: htdt/self-supervised README commands + cfg.py (recipes.md §2, §3).
# Protocol: LP-SMALL (scripts/linear/cifar100/wmse.sh).
# Target: 67.64 / 56.45 top-1 / 5-nn (CW-RGP table copy).
# Variant: the CIFAR-10 recipe (../cifar10/wmse.sh) on CIFAR-100, with W-MSE's CIFAR-100 statistics.
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
# global batch 256 = 1 GPU x 256 (NUM_GPUS / NUM_NODES change the split only)
pretrain_variant ../cifar10/wmse.sh 256 1 1 \
  data.name=cifar100 'data.mean=[0.5071,0.4867,0.4408]' 'data.std=[0.2675,0.2565,0.2761]' -- "$@"
