"""MoCo v2: the first crop's query against the second's key and one queue, the constant momentum, unshuffled keys
on one process."""

import torch
import torch.nn.functional as F
from method_settings import TINY, crops, small_config
from torch import nn

from zoo.losses import info_nce_loss
from zoo.methods.mocov2 import encode_shuffled_across_ranks
from zoo.registry import create_method


def test_mocov2_contrasts_the_first_crops_query_with_the_seconds_key_and_one_queue():
    torch.manual_seed(0)
    model = create_method("mocov2", small_config("mocov2"), **TINY)
    assert [type(layer) for layer in model.projector] == [nn.Linear, nn.ReLU, nn.Linear]
    model.queue.ptr.fill_(32)  # 16 keys wrap around the 40-key queue: rows 32..39, then 0..7
    before = model.queue.keys.clone()
    batch = crops()
    loss, features = model.compute_loss(batch)
    with torch.no_grad():
        query = F.normalize(model.projector(model.backbone(batch[0])), dim=-1)
        key = F.normalize(model.target(batch[1]), dim=-1)
    assert torch.allclose(loss, info_nce_loss(query, key, before[0], 0.2), rtol=1e-5)
    assert len(features) == 1 and features[0].shape == (16, model.feature_dim)  # the query crop's, for the probe
    assert model.queue.keys.shape == (1, 40, 32)
    rows = torch.cat([torch.arange(32, 40), torch.arange(0, 8)])
    assert torch.allclose(model.queue.keys[0, rows], key, atol=1e-6) and torch.equal(model.queue.keys[0, 8:32], before[0, 8:32])
    assert model.queue.ptr.item() == 8
    loss.backward()
    assert all(p.grad is None for p in model.target.backbone.parameters())
    assert all(p.grad is not None for p in model.backbone.parameters())


def test_mocov2_momentum_is_constant_and_moves_the_key_encoder_by_a_thousandth():
    model = create_method("mocov2", small_config("mocov2"), **TINY)
    assert model.target.momentum(step=0, total_steps=100) == model.target.momentum(step=70, total_steps=100) == 0.999
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)
    target = [p.clone() for p in model.target.backbone.parameters()]
    model.target.update(model.target.momentum(step=5, total_steps=100))
    for new, old, online in zip(model.target.backbone.parameters(), target, model.backbone.parameters()):
        assert torch.allclose(new, 0.999 * old + 0.001 * online, atol=1e-6)


def test_one_process_encodes_the_keys_unshuffled():
    x = torch.randn(6, 3)
    assert torch.equal(encode_shuffled_across_ranks(lambda t: t - t.mean(0), x), x - x.mean(0))
