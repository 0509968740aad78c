#!/usr/bin/env bash
# CW-RGP 2 on CIFAR-100: ResNet-18, 2 views, 1000 epochs (the official recipe).
# Source: winci-ai/CW-RGP scripts/base.sh + base/cfg.py (recipes.md §2, §3).
# Protocol: LP-SMALL (scripts/linear/cifar100/cwrgp.sh).
# Target: 67.51 / 57.35 top-1 / 5-nn (CW-RGP README).
# Variant: CW-RGP 4 (cwrgp.sh) with 2 views at global batch 512 (the default bs; w_iter stays 1).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
# global batch 512 = 1 GPU x 512 (NUM_GPUS / NUM_NODES change the split only)
pretrain_variant cwrgp.sh 512 1 1 data.views.0.count=2 -- "$@"
