#!/usr/bin/env bash
# SwAV on ImageNet: ResNet-50, 2 views of 224 px, 100 epochs, batch 4096 (the official recipe, without multi-crop).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/swav.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/swav "$@"
