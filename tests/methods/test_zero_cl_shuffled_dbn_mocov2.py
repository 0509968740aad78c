"""Zero-CL, Shuffled-DBN and MoCo v2: the class defaults are their sources' (Zero-CL: its official code's)."""

from zoo.registry import get_method


def test_the_defaults_are_their_sources():
    zero_cl, shuffled_dbn, mocov2 = (get_method(name) for name in ("zero_cl", "shuffled_dbn", "mocov2"))
    config = zero_cl.Config()  # Sherrylone/Zero-CL ImageNet-100/main.py (tests/methods/test_zero_cl.py has the rest)
    assert (config.proj_hidden, config.proj_out, config.mode, config.eps, config.ridge) == ([8192, 8192], 8192, "fea", 0.0, 0.01)
    assert zero_cl.optimizer_defaults["name"] == "lars_fb" and not zero_cl.joint_projector  # one projector call per view
    config = shuffled_dbn.Config()
    assert (config.proj_out, config.groups, config.w_size, config.eps) == (128, 16, None, 0.0)
    assert shuffled_dbn.joint_projector and shuffled_dbn.num_views is None
    config = mocov2.Config()
    assert (config.proj_hidden, config.proj_out, config.proj_hidden_bn, config.temperature) == ([2048], 128, False, 0.2)
    assert config.momentum_base == config.momentum_final == 0.999 and config.shuffle_bn
    assert mocov2.optimizer_defaults == {"name": "sgd", "lr": 0.03, "weight_decay": 1e-4} and mocov2.queue_count == 1
