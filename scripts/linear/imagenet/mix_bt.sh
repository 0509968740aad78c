#!/usr/bin/env bash
# LP-FB-BT for Mixed Barlow Twins on ImageNet: frozen backbone, SGD lr 0.3, wd 1e-6, batch 256, 100 epochs, cosine.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet/mix_bt.yaml
# Usage: bash scripts/linear/imagenet/mix_bt.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet/mix_bt "$@"
