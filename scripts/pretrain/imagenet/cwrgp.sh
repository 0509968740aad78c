#!/usr/bin/env bash
# CW-RGP 4 on ImageNet: ResNet-50, 4 views, 100 epochs (the official recipe).
# Source: winci-ai/CW-RGP scripts/ImageNet.sh + ImageNet/{cfg,train,model}.py (recipes.md §5.2).
# Protocol: LP-CW-LARS (scripts/linear/imagenet/cwrgp.sh).
# Target: 69.7 top-1 (CW-RGP README).
# w_size 128 = the official per-GPU batch: zoo whitens sub-batches of 128 drawn from the global batch.
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 512 4 1 "$@"  # global batch 512 = 4 GPUs x 128 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=cwrgp data.name=imagenet data.num_workers=8 augment=mocov2 data.views.0.count=4 \
  backbone.name=resnet50 backbone.small_stem=false backbone.zero_init_residual=true \
  'method.proj_hidden=[2048,2048]' method.proj_out=1024 method.proj_hidden_bias=true method.proj_last_bias=true \
  method.groups=2 method.w_size=128 method.w_iter=1 method.eps=0 method.cov_w=0.005 method.cov_stop=50 \
  optimizer.name=sgd optimizer.lr=0.05 optimizer.scale_lr=true optimizer.probe_lr=0.1 optimizer.momentum=0.9 optimizer.weight_decay=1e-4 optimizer.exclude_bias_and_norm=false \
  scheduler.name=cosine scheduler.interval=epoch scheduler.warmup_epochs=0 scheduler.warmup_steps=500 scheduler.final_factor=0 \
  trainer.max_epochs=100 trainer.precision=32-true trainer.sync_batchnorm=true trainer.check_val_every_n_epoch=10 \
  "${USER_ARGS[@]}"
