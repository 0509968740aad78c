#!/usr/bin/env bash
# CW-RGP 4 on ImageNet-100: ResNet-18, 4 views, 240 epochs (a proposal: no published recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet-100/cwrgp.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet-100/cwrgp "$@"
