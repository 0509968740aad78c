#!/usr/bin/env bash
# SimSiam on ImageNet: ResNet-50, 2 views, 100 epochs, batch 512 (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/simsiam.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/simsiam "$@"
