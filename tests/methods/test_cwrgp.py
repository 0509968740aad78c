"""CW-RGP: the covariance penalty is a loss part until cov_stop."""


import torch
from method_settings import build


def test_cwrgp_covariance_penalty_is_a_loss_part_until_cov_stop():
    model = build("cwrgp", ["method.cov_w=0.5", "method.cov_stop=1"]).method
    torch.manual_seed(0)
    views = [torch.randn(32, 64) for _ in range(2)]
    torch.manual_seed(1)
    total, parts = model.loss(views)
    assert set(parts) == {"mse", "covariance"} and parts["covariance"] > 0
    assert torch.equal(total, parts["mse"] + parts["covariance"])
    torch.manual_seed(1)
    total_after, parts_after = model.loss(views, epoch=1)  # past cov_stop: the penalty is off
    assert torch.equal(total_after, parts["mse"]) and parts_after["covariance"] == 0
