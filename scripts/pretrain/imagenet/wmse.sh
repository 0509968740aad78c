#!/usr/bin/env bash
# W-MSE 4 on ImageNet: ResNet-50, 4 views, 100 epochs (a proposal: no published recipe).
# Source: [P] recipes.md §5.2: CW-RGP's ImageNet pipeline with batch whitening (Cholesky), w_size 256, embedding 128.
# Protocol: LP-CW-LARS (scripts/linear/imagenet/wmse.sh).
# Target: 65.1 top-1 at batch 512, 100 epochs, as listed in the INTL / CW-RGP tables (recipe unknown).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 512 4 1 "$@"  # global batch 512 = 4 GPUs x 128 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=wmse data.name=imagenet data.num_workers=8 augment=mocov2 data.views.0.count=4 \
  backbone.name=resnet50 backbone.small_stem=false backbone.zero_init_residual=true \
  'method.proj_hidden=[2048,2048]' method.proj_out=128 method.proj_hidden_bias=true method.proj_last_bias=true \
  method.w_size=256 method.w_iter=1 method.eps=0 \
  optimizer.name=sgd optimizer.lr=0.05 optimizer.scale_lr=true optimizer.probe_lr=0.1 optimizer.momentum=0.9 optimizer.weight_decay=1e-4 optimizer.exclude_bias_and_norm=false \
  scheduler.name=cosine scheduler.interval=epoch scheduler.warmup_epochs=0 scheduler.warmup_steps=500 scheduler.final_factor=0 \
  trainer.max_epochs=100 trainer.precision=32-true trainer.sync_batchnorm=true trainer.check_val_every_n_epoch=10 \
  "${USER_ARGS[@]}"
