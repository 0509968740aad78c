#!/usr/bin/env bash
# LP-MMCR for MMCR on CIFAR-100: frozen backbone, Adam lr 0.1, batch 1024, 50 epochs, cosine.
# The protocol, its source and notes: zoo/configs/linear/experiment/cifar100/mmcr.yaml
# Usage: bash scripts/linear/cifar100/mmcr.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear cifar100/mmcr "$@"
