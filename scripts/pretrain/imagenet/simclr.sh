#!/usr/bin/env bash
# SimCLR on ImageNet: ResNet-50, 2 views, 100 epochs, batch 4096 (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/simclr.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/simclr "$@"
