#!/usr/bin/env bash
# CW-RGP 4 on ImageNet: ResNet-50, 4 views, 200 epochs (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/cwrgp_ep200.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/cwrgp_ep200 "$@"
