#!/usr/bin/env bash
# FroSSL on STL-10: ResNet-18, 2 views of 96 px, 500 epochs (the official solo-learn fork's config).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/stl10/frossl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain stl10/frossl "$@"
