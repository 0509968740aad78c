#!/usr/bin/env bash
# MoCo v2 on ImageNet: ResNet-50, 2 views, 100 epochs, batch 256 (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/mocov2.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/mocov2 "$@"
