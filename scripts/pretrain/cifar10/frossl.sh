#!/usr/bin/env bash
# FroSSL on CIFAR-10: ResNet-18, 2 views, 1000 epochs (the official solo-learn fork's config).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar10/frossl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar10/frossl "$@"
