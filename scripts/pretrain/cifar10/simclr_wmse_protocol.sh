#!/usr/bin/env bash
# SimCLR on CIFAR-10 under the W-MSE protocol: ResNet-18, 2 views, 1000 epochs (htdt/self-supervised).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar10/simclr_wmse_protocol.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar10/simclr_wmse_protocol "$@"
