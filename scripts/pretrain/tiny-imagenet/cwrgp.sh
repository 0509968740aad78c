#!/usr/bin/env bash
# CW-RGP 4 on Tiny-ImageNet: ResNet-18, 4 views, 1000 epochs (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/tiny-imagenet/cwrgp.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain tiny-imagenet/cwrgp "$@"
