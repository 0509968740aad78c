#!/usr/bin/env bash
# CW-RGP 2 on CIFAR-10: ResNet-18, 2 views, 1000 epochs (the official recipe).
# Source: winci-ai/CW-RGP scripts/base.sh + base/cfg.py (recipes.md §2, §3).
# Protocol: LP-SMALL (scripts/linear/cifar10/cwrgp.sh).
# Target: 91.92 / 89.54 top-1 / 5-nn (CW-RGP README).
# Variant: CW-RGP 4 (cwrgp.sh) with 2 views and w_iter 4 at global batch 256 (CIFAR-100 and the others: 512, w_iter 1).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
# global batch 256 = 1 GPU x 256 (NUM_GPUS / NUM_NODES change the split only)
pretrain_variant cwrgp.sh 256 1 1 data.views.0.count=2 method.w_iter=4 -- "$@"
