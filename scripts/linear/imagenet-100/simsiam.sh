#!/usr/bin/env bash
# LP-SOLO for SimSiam on ImageNet-100: frozen backbone, SGD lr 30.0, batch 256, 100 epochs, steps at 60 / 80.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet-100/simsiam.yaml
# Usage: bash scripts/linear/imagenet-100/simsiam.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet-100/simsiam "$@"
