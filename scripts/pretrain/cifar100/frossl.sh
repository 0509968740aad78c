#!/usr/bin/env bash
# FroSSL on CIFAR-100: ResNet-18, 2 views, 1000 epochs (the official solo-learn fork's config).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar100/frossl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar100/frossl "$@"
