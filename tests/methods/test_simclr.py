"""SimCLR: htdt/self-supervised's head (the W-MSE protocol) against its computation, and the default options."""

import pytest
import torch
import torch.nn.functional as F
from default_run import default_run
from method_settings import TINY, solo_learn_small
from torch import nn

from zoo.registry import create_method, get_method

# ---- htdt/self-supervised's SimCLR (the W-MSE protocol): bn_last and the head on both views at once ----------------
HTDT_SIMCLR = {"proj_hidden": [24], "proj_out": 8, "proj_hidden_bn": True, "proj_bn_last": True, "joint_projector": True,
               "temperature": 0.5}


def batch_norm(x, weight, bias, eps=1e-5):
    """BatchNorm1d in training mode: the batch's mean and biased variance."""
    return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + eps) * weight + bias


def htdt_simclr_loss(views, head, tau):
    """htdt methods/contrastive.py Contrastive.forward after the encoder, written from its description: the views'
    features concatenated go once through get_head (Linear, BatchNorm1d, ReLU, Linear) and bn_last (an affine
    BatchNorm1d), then split back; every pair of views (i < j) gives contrastive_loss, averaged over the pairs.
    contrastive_loss (norm=True, cfg.py's default): latents L2-normalised; for view 0 the logits against view 1 and
    against view 0 itself with its own sample pushed out by -1e9, cross-entropy to the sample's index in view 1;
    the same for view 1; the two averaged."""
    w1, b1, g1, beta1, w2, b2, g2, beta2 = head
    h = batch_norm(torch.cat(views) @ w1.T + b1, g1, beta1).relu()
    h = batch_norm(h @ w2.T + b2, g2, beta2)
    n = len(views[0])
    parts = [F.normalize(h[i * n:(i + 1) * n], dim=1) for i in range(len(views))]
    mask = torch.eye(n, dtype=h.dtype) * 1e9
    index = torch.arange(n)
    loss, pairs = 0.0, 0
    for i in range(len(parts)):
        for j in range(i + 1, len(parts)):
            x0, x1 = parts[i], parts[j]
            logits0 = torch.cat([x0 @ x1.T / tau, x0 @ x0.T / tau - mask], dim=1)
            logits1 = torch.cat([x1 @ x0.T / tau, x1 @ x1.T / tau - mask], dim=1)
            loss = loss + (F.cross_entropy(logits0, index) + F.cross_entropy(logits1, index)) / 2
            pairs += 1
    return loss / pairs


def test_simclr_with_htdts_head_equals_htdts_computation_in_value_and_gradient():
    torch.manual_seed(0)
    model = create_method("simclr", HTDT_SIMCLR, **TINY).double().train()
    assert [type(layer) for layer in model.projector] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d]
    last_bn = model.projector[4]
    assert last_bn.affine and last_bn.num_features == 8 and model.projector[3].bias is not None
    with torch.no_grad():  # BatchNorm affine parameters away from 1 / 0, so that they matter
        for bn in (model.projector[1], last_bn):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    gen = torch.Generator().manual_seed(1)
    views = [torch.randn(16, model.feature_dim, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    loss = model.loss(model.project(views))
    loss.backward()
    params = [model.projector[0].weight, model.projector[0].bias, model.projector[1].weight, model.projector[1].bias,
              model.projector[3].weight, model.projector[3].bias, last_bn.weight, last_bn.bias]
    head = [p.detach().clone().requires_grad_() for p in params]
    inputs = [v.detach().clone().requires_grad_() for v in views]
    expected = htdt_simclr_loss(inputs, head, tau=0.5)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    for zoo, ref in zip(views + params, inputs + head):
        assert torch.allclose(zoo.grad, ref.grad, rtol=1e-9, atol=1e-13)
    # Each view through the head on its own (solo-learn's way) is a different computation.
    model.mcfg.joint_projector = False
    assert abs(model.loss(model.project(views)).item() - loss.item()) > 1e-3


def test_simclr_has_neither_htdt_option_by_default():
    assert not get_method("simclr").Config().proj_bn_last  # the official (google-research) head joins the views
    config, _ = default_run("simclr")  # solo-learn's, in the default run
    assert not config.proj_bn_last and not config.joint_projector
    model = create_method("simclr", solo_learn_small("simclr"), **TINY)
    assert not model.joint_projector and not isinstance(model.projector[-1], nn.BatchNorm1d)
