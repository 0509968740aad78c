#!/usr/bin/env bash
# FroSSL on Tiny-ImageNet: ResNet-18, 2 views of 64 px, 800 epochs (the official solo-learn fork's config).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/tiny-imagenet/frossl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain tiny-imagenet/frossl "$@"
