#!/usr/bin/env bash
# CW-RGP 2 on ImageNet-100: ResNet-18, 2 views, 240 epochs (a proposal: no published recipe).
# Source: [P] recipes.md §4: CW-RGP base/ code with --dataset in100 under the W-MSE ImageNet-100 protocol.
# Protocol: LP-SMALL on Resize 256 / CenterCrop 224 features (scripts/linear/imagenet-100/cwrgp.sh).
# Target: none published (the INTL table's 76.96 has no known recipe).
# Variant: CW-RGP 4 (cwrgp.sh) with 2 views at global batch 512.
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
# global batch 512 = 1 GPU x 512 (NUM_GPUS / NUM_NODES change the split only)
pretrain_variant cwrgp.sh 512 1 1 data.views.0.count=2 -- "$@"
