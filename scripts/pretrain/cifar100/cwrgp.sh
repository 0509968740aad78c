#!/usr/bin/env bash
# CW-RGP 4 on CIFAR-100: ResNet-18, 4 views, 1000 epochs (the official recipe).
# Source: winci-ai/CW-RGP scripts/base.sh + base/cfg.py (recipes.md §2, §3).
# Protocol: LP-SMALL (scripts/linear/cifar100/cwrgp.sh).
# Target: 68.26 / 58.67 top-1 / 5-nn (CW-RGP README).
# Variant: the CIFAR-10 recipe (../cifar10/cwrgp.sh) on CIFAR-100, with W-MSE's CIFAR-100 statistics.
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
# global batch 256 = 1 GPU x 256 (NUM_GPUS / NUM_NODES change the split only)
pretrain_variant ../cifar10/cwrgp.sh 256 1 1 \
  data.name=cifar100 'data.mean=[0.5071,0.4867,0.4408]' 'data.std=[0.2675,0.2565,0.2761]' -- "$@"
