#!/usr/bin/env bash
# W-MSE 4 on ImageNet-100: ResNet-18, 4 views, 240 epochs (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet-100/wmse.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet-100/wmse "$@"
