#!/usr/bin/env bash
# CW-RGP 2 on Tiny-ImageNet: ResNet-18, 2 views, 1000 epochs (the official recipe).
# Source: winci-ai/CW-RGP scripts/base.sh + base/cfg.py (recipes.md §2, §3).
# Protocol: LP-SMALL (scripts/linear/tiny-imagenet/cwrgp.sh).
# Target: 49.23 / 34.04 top-1 / 5-nn (CW-RGP README).
# Data: an ImageFolder with train/<class>/ and val/<class>/ (the labelled val split re-arranged).
# Variant: CW-RGP 4 (cwrgp.sh) with 2 views at global batch 512 (the default bs).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
# global batch 512 = 1 GPU x 512 (NUM_GPUS / NUM_NODES change the split only)
pretrain_variant cwrgp.sh 512 1 1 data.views.0.count=2 -- "$@"
