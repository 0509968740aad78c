#!/usr/bin/env bash
# LP-FB-VIC for VICReg on ImageNet: frozen backbone, SGD lr 0.02, wd 1e-6, batch 256, 100 epochs, cosine.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet/vicreg.yaml
# Usage: bash scripts/linear/imagenet/vicreg.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet/vicreg "$@"
