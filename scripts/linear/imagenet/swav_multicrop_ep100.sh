#!/usr/bin/env bash
# LP-SWAV for SwAV multi-crop on ImageNet: frozen backbone, SGD lr 0.3, wd 1e-6, batch 256, 100 epochs, cosine.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet/swav_multicrop_ep100.yaml
# Usage: bash scripts/linear/imagenet/swav_multicrop_ep100.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet/swav_multicrop_ep100 "$@"
