"""CorInfoMax, MMCR and FroSSL as methods: the official defaults, a training step each."""

import pytest
import torch
from default_run import default_run
from method_settings import LOSS_PARTS, TINY, small_config
from torch import nn

from zoo.registry import create_method, get_method


def test_the_defaults_are_the_official_ones():
    corinfomax, mmcr, frossl = (get_method(name) for name in ("corinfomax", "mmcr", "frossl"))
    c = corinfomax.Config()
    assert (c.proj_hidden, c.proj_out, c.proj_hidden_bn, c.proj_last_bias, c.normalize) == ([2048, 2048], 64, False, False, True)
    assert (c.sim_weight, c.cov_weight, c.init_scale) == (250.0, 1.0, 1.0)
    assert (c.cov_forgetting, c.mean_forgetting, c.eps) == (0.01, 0.01, 1e-8)
    assert corinfomax.optimizer_defaults == {"name": "sgd", "lr": 0.5, "scale_lr": False, "weight_decay": 1e-4}
    c = mmcr.Config()
    assert (c.proj_hidden, c.proj_out, c.proj_hidden_bn, c.lambd) == ([512], 128, True, 0.0)
    assert not c.proj_hidden_bias and not c.proj_last_bias
    assert {k: mmcr.optimizer_defaults[k] for k in ("name", "lr", "scale_lr", "weight_decay")} == \
        {"name": "adam", "lr": 1e-3, "scale_lr": False, "weight_decay": 1e-6}
    c = frossl.Config()
    assert (c.proj_hidden, c.proj_out, c.proj_hidden_bn, c.invariance_weight) == ([2048, 2048], 1024, True, 1.0)
    # the default run's (zoo/configs/embedded/frossl.yaml: the official projector and weight collapse on the digits)
    c, _ = default_run("frossl")
    assert (c.proj_hidden, c.proj_out, c.proj_hidden_bn, c.invariance_weight) == ([512], 512, True, 0.1)
    assert {k: frossl.optimizer_defaults[k] for k in ("name", "lr", "weight_decay", "lars_eta", "exclude_bias_and_norm")} == \
        {"name": "lars", "lr": 0.3, "weight_decay": 1e-4, "lars_eta": 0.02, "exclude_bias_and_norm": True}
    assert corinfomax.num_views == 2 and mmcr.num_views is None and frossl.num_views is None
    projector = create_method("corinfomax", small_config("corinfomax"), **TINY).projector
    assert [type(layer) for layer in projector] == [nn.Linear, nn.ReLU, nn.Linear] and projector[-1].bias is None


@pytest.mark.parametrize("name, crops", [("corinfomax", 2), ("mmcr", 2), ("mmcr", 4), ("frossl", 3)])
def test_a_training_step_gives_a_finite_loss_its_parts_and_gradients(name, crops):
    torch.manual_seed(0)
    model = create_method(name, small_config(name), **{**TINY, "crop_sizes": (16,) * crops})
    state = {key: value.clone() for key, value in model.state_dict().items() if key.startswith("running_")}
    batch = [torch.randn(16, 3, 16, 16) for _ in range(crops)]
    loss, parts = model.split_loss(model.compute_loss(batch)[0])
    assert loss.ndim == 0 and torch.isfinite(loss) and set(parts) == LOSS_PARTS[name]
    loss.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    for key, before in state.items():  # CorInfoMax's step moved its running estimates
        assert not torch.allclose(getattr(model, key), before), key
