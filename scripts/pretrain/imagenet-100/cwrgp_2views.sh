#!/usr/bin/env bash
# CW-RGP 2 on ImageNet-100: ResNet-18, 2 views, 240 epochs (a proposal: no published recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet-100/cwrgp_2views.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet-100/cwrgp_2views "$@"
