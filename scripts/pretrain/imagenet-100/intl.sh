#!/usr/bin/env bash
# INTL on ImageNet-100: ResNet-18, 2 views, 400 epochs (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet-100/intl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet-100/intl "$@"
