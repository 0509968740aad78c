#!/usr/bin/env bash
# LP-SS-LARS for SwAV on ImageNet: frozen backbone, LARS (SGD + LARC 0.001) lr 1.6, batch 4096, 90 epochs, cosine.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet/swav.yaml
# Usage: bash scripts/linear/imagenet/swav.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet/swav "$@"
