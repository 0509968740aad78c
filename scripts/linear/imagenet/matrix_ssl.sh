#!/usr/bin/env bash
# LP-MEC-LARS for Matrix-SSL on ImageNet: frozen backbone, LARS (SGD + LARC 0.001) lr 0.48, batch 4096, 100 epochs, cosine.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet/matrix_ssl.yaml
# Usage: bash scripts/linear/imagenet/matrix_ssl.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet/matrix_ssl "$@"
