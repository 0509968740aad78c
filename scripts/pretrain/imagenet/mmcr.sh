#!/usr/bin/env bash
# MMCR on ImageNet: ResNet-50, 2 views, 100 epochs, batch 2048 on 4 nodes x 4 GPUs, LARS (the repository defaults, --objective MMCR).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/mmcr.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/mmcr "$@"
