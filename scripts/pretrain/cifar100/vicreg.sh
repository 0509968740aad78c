#!/usr/bin/env bash
# VICReg on CIFAR-100: ResNet-18, 2 views, 1000 epochs (solo-learn's published config).
# Source: vturrisi/solo-learn scripts/pretrain/cifar/vicreg.yaml (recipes.md §2).
# Protocol: solo-learn online probe (summary.json); LP-SMALL offline (scripts/linear/cifar100/vicreg.sh).
# Target: 68.54 online top-1 (solo-learn README); LP-SMALL 66.45 / 56.78 top-1 / 5-nn (CW-RGP table copy, other recipe).
# method.var=50: solo-learn sums the two views' variance terms with weight 25; zoo's loss averages them (FB).
# Variant: the CIFAR-10 recipe (../cifar10/vicreg.sh) on CIFAR-100, normalised with its own statistics.
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
# global batch 256 = 1 GPU x 256 (NUM_GPUS / NUM_NODES change the split only)
pretrain_variant ../cifar10/vicreg.sh 256 1 1 data.name=cifar100 -- "$@"
