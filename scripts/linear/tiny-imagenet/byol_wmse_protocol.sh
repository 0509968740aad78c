#!/usr/bin/env bash
# LP-SMALL for BYOL on Tiny-ImageNet: linear layer on precomputed features (Adam, 500 epochs) and 5-nn.
# The protocol, its source and notes: zoo/configs/linear/experiment/tiny-imagenet/byol_wmse_protocol.yaml
# Usage: bash scripts/linear/tiny-imagenet/byol_wmse_protocol.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear tiny-imagenet/byol_wmse_protocol "$@"
