#!/usr/bin/env bash
# Matrix-SSL on ImageNet: ResNet-50, 2 views, 100 epochs, batch 1024 (the official README command).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/matrix_ssl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/matrix_ssl "$@"
