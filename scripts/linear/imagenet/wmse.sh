#!/usr/bin/env bash
# LP-CW-LARS for W-MSE on ImageNet: frozen backbone, LARS (SGD + LARC 0.001) lr 0.4, batch 1024, 100 epochs, cosine.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet/wmse.yaml
# Usage: bash scripts/linear/imagenet/wmse.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet/wmse "$@"
