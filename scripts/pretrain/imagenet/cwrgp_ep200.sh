#!/usr/bin/env bash
# CW-RGP 4 on ImageNet: ResNet-50, 4 views, 200 epochs (the official recipe).
# Source: winci-ai/CW-RGP scripts/ImageNet.sh + ImageNet/{cfg,train,model}.py (recipes.md §5.2).
# Protocol: LP-CW-LARS (scripts/linear/imagenet/cwrgp.sh).
# Target: 71.0 top-1 (CW-RGP README).
# w_size 128 = the official per-GPU batch: zoo whitens sub-batches of 128 drawn from the global batch.
# Variant: the 100-epoch recipe (cwrgp.sh) with 200 epochs and its cov loss: weight 0.01, stopped at epoch 100.
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
# global batch 512 = 4 GPUs x 128 (NUM_GPUS / NUM_NODES change the split only)
pretrain_variant cwrgp.sh 512 4 1 method.cov_w=0.01 method.cov_stop=100 trainer.max_epochs=200 -- "$@"
