#!/usr/bin/env bash
# INTL on CIFAR-10: ResNet-18, 2 views, 1000 epochs (the official recipe).
# Source: winci-ai/INTL scripts/cifar10.sh + cifar/cfg.py, cifar/main.py (recipes.md §2).
# Protocol: LP-SMALL (scripts/linear/cifar10/intl.sh).
# Target: 92.60 top-1, 90.03 5-nn, 99.80 top-5 (INTL README).
# Weight decay on every parameter, BN and biases too (INTL cifar/main.py); trade-off 0.01 (log2 256 - 3).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 256 1 1 "$@"  # global batch 256 = 1 GPU x 256 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=intl data.name=cifar10 augment=intl_cifar \
  backbone.name=resnet18 backbone.small_stem=true backbone.small_stem_padding=2 backbone.zero_init_residual=false \
  'method.proj_hidden=[2048,2048]' method.proj_out=2048 method.proj_hidden_bias=false method.proj_last_bias=true \
  method.iters=4 method.axis=channel method.trade_off=0.05 \
  optimizer.name=sgd optimizer.lr=0.3 optimizer.momentum=0.9 optimizer.weight_decay=1e-4 optimizer.exclude_bias_and_norm=false \
  scheduler.name=cosine scheduler.interval=step scheduler.warmup_epochs=2 scheduler.final_factor=0.001 \
  trainer.max_epochs=1000 trainer.precision=32-true trainer.sync_batchnorm=true trainer.check_val_every_n_epoch=5 \
  "${USER_ARGS[@]}"
