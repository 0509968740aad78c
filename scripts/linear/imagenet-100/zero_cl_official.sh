#!/usr/bin/env bash
# LP-FB-BT for Zero-CL on ImageNet-100 (ResNet-18): frozen backbone, SGD lr 0.3, wd 1e-6, batch 256, 100 epochs, cosine.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet-100/zero_cl_official.yaml
# Usage: bash scripts/linear/imagenet-100/zero_cl_official.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet-100/zero_cl_official "$@"
