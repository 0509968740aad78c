#!/usr/bin/env bash
# LP-SMALL for CW-RGP on ImageNet-100: linear layer on precomputed features (Adam, 500 epochs) and 5-nn.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet-100/cwrgp.yaml
# Usage: bash scripts/linear/imagenet-100/cwrgp.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet-100/cwrgp "$@"
