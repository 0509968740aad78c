#!/usr/bin/env bash
# FroSSL on ImageNet-100: ResNet-18, 8 views, 400 epochs (the official solo-learn fork's config).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet-100/frossl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet-100/frossl "$@"
