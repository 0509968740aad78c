#!/usr/bin/env bash
# LP-MMCR-IN for MMCR on ImageNet: frozen backbone, SGD lr 0.3, batch 2048, 100 epochs, cosine.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet/mmcr.yaml
# Usage: bash scripts/linear/imagenet/mmcr.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet/mmcr "$@"
