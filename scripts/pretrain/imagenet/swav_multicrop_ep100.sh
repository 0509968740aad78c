#!/usr/bin/env bash
# SwAV with multi-crop on ImageNet: ResNet-50, 2 x 224 + 6 x 96 crops, 100 epochs, batch 4096 (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/swav_multicrop_ep100.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/swav_multicrop_ep100 "$@"
