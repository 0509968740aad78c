#!/usr/bin/env bash
# INTL on ImageNet-100: ResNet-18, 2 views, 400 epochs (the official recipe).
# Source: winci-ai/INTL scripts/in100.sh + cfg.py, main.py (recipes.md §4).
# Protocol: LP-INTL top-1 / top-5, LP-SMALL's 5-nn (scripts/linear/imagenet-100/intl.sh).
# Target: 81.68 top-1, 73.46 5-nn, 95.42 top-5 (INTL README).
# lr 0.5 per 256 = 0.25 at batch 128; trade-off 0.01 (log2 128 - 3). GPU count not published.
# Deviation: IterNorm runs in float32 (the official code runs it under fp16 autocast).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 128 1 1 "$@"  # global batch 128 = 1 GPU x 128 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=intl data.name=imagenet100 data.num_workers=8 augment=intl_imagenet \
  backbone.name=resnet18 backbone.small_stem=false backbone.zero_init_residual=false \
  'method.proj_hidden=[4096,4096]' method.proj_out=8192 method.proj_hidden_bias=false method.proj_last_bias=true \
  method.iters=4 method.axis=channel method.trade_off=0.04 \
  optimizer.name=sgd optimizer.lr=0.5 optimizer.momentum=0.9 optimizer.weight_decay=2.5e-5 optimizer.exclude_bias_and_norm=true \
  scheduler.name=cosine scheduler.interval=step scheduler.warmup_epochs=2 scheduler.final_factor=0.001 \
  trainer.max_epochs=400 trainer.precision=16-mixed trainer.sync_batchnorm=true trainer.check_val_every_n_epoch=5 \
  "${USER_ARGS[@]}"
