#!/usr/bin/env bash
# W-MSE 2 on Tiny-ImageNet: ResNet-18, 2 views, 1000 epochs (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/tiny-imagenet/wmse_2views.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain tiny-imagenet/wmse_2views "$@"
