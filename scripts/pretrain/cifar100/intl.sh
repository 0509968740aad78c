#!/usr/bin/env bash
# INTL on CIFAR-100: ResNet-18, 2 views, 1000 epochs (the official recipe).
# Source: winci-ai/INTL scripts/cifar100.sh + cifar/cfg.py, cifar/main.py (recipes.md §2).
# Protocol: LP-SMALL (scripts/linear/cifar100/intl.sh).
# Target: 70.88 top-1, 61.90 5-nn, 92.13 top-5 (INTL README).
# Weight decay on every parameter, BN and biases too (INTL cifar/main.py); trade-off 0.01 (log2 256 - 3).
# Variant: the CIFAR-10 recipe (../cifar10/intl.sh) on CIFAR-100, normalised with its own statistics.
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
# global batch 256 = 1 GPU x 256 (NUM_GPUS / NUM_NODES change the split only)
pretrain_variant ../cifar10/intl.sh 256 1 1 data.name=cifar100 -- "$@"
