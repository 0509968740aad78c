#!/usr/bin/env bash
# LP-SOLO for solo-learn's 100-epoch Barlow Twins: frozen backbone, SGD lr 0.3, wd 1e-5, batch 256, 100 epochs, steps at 60 / 80.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet/barlow_twins_ep100.yaml
# Usage: bash scripts/linear/imagenet/barlow_twins_ep100.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet/barlow_twins_ep100 "$@"
