#!/usr/bin/env bash
# LP-SMALL for CW-RGP on ImageNet-100: linear layer on precomputed features (Adam, 500 epochs) and 5-nn.
# Source: the W-MSE protocol, htdt/self-supervised eval/{sgd,knn}.py (= CW-RGP base/eval, INTL cifar/eval) (recipes.md §6).
# Target: none published ([P] recipe).
# Normalisation: the pretraining run's own (W-MSE / CW-RGP statistics).
# Features of Resize 256 / CenterCrop 224 images (the offline pre-resized clf/ and test/ folders).
# Variant: LP-SMALL as in wmse.sh.
# Usage: bash scripts/linear/imagenet-100/cwrgp.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
linear_variant wmse.sh -- "$@"
