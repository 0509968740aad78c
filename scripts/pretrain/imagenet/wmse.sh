#!/usr/bin/env bash
# W-MSE 4 on ImageNet: ResNet-50, 4 views, 100 epochs (a proposal: no published recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/wmse.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/wmse "$@"
