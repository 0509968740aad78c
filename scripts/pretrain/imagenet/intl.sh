#!/usr/bin/env bash
# INTL on ImageNet: ResNet-50, 2 views, 800 epochs (the official 2-view recipe).
# Source: winci-ai/INTL scripts/ep800.sh + cfg.py, main.py (recipes.md §5.1).
# Protocol: LP-INTL, lr 0.2 (scripts/linear/imagenet/intl.sh); semi-supervised: intl_semi_{1,10}pct.sh.
# Target: 73.1 top-1 (INTL README).
# GPU count not published (4 assumed); the global batch 256 is the recipe.
# Deviation: IterNorm runs in float32 (the official code runs it under fp16 autocast).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 256 4 1 "$@"  # global batch 256 = 4 GPUs x 64 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=intl data.name=imagenet data.num_workers=8 augment=intl_imagenet \
  backbone.name=resnet50 backbone.small_stem=false backbone.zero_init_residual=true \
  'method.proj_hidden=[8192,8192]' method.proj_out=8192 method.proj_hidden_bias=false method.proj_last_bias=true \
  method.iters=4 method.axis=channel method.trade_off=0.05 \
  optimizer.name=sgd optimizer.lr=0.3 optimizer.momentum=0.9 optimizer.weight_decay=1e-5 optimizer.exclude_bias_and_norm=true \
  scheduler.name=cosine scheduler.interval=step scheduler.warmup_epochs=2 scheduler.final_factor=0.001 \
  trainer.max_epochs=800 trainer.precision=16-mixed trainer.sync_batchnorm=true trainer.check_val_every_n_epoch=10 \
  "${USER_ARGS[@]}"
