"""zoo.metrics.stages: the stages of timm's ResNets and ViTs read by forward hooks, their spectra equal to the pooled
features' own, and nothing left behind on the backbone."""

import pytest
import timm
import torch

from zoo.backbones import create_backbone
from zoo.config import BackboneConfig
from zoo.metrics.health import rankme
from zoo.metrics.spectrum import covariance_eigenvalues, effective_rank
from zoo.metrics.stages import StageTaps, stage_measures


def test_resnet_stages_are_its_layers_and_the_last_one_is_the_backbone_features():
    torch.manual_seed(0)
    backbone = create_backbone(BackboneConfig(name="resnet18"), 16).eval()  # the small stem of 16 px crops
    taps = StageTaps(backbone)
    assert taps.names == ["layer1", "layer2", "layer3", "layer4"]
    images = torch.randn(40, 3, 16, 16)
    with torch.no_grad():
        plain = backbone(images)
        with taps.recording():
            features = torch.cat([backbone(part) for part in images.split(16)])
    assert torch.equal(features, plain)  # the hooks only read
    assert not any(module._forward_hooks for module in backbone.modules())  # and are gone after recording
    measures, spectra = stage_measures(taps.reduced())
    assert [len(s) for s in spectra] == [39] * 4  # 40 centred images span 39 dimensions (64 to 512 channels)
    assert measures["stage4/effective_rank"].value == pytest.approx(effective_rank(covariance_eigenvalues(features)), rel=1e-9)
    assert measures["stage4/rankme"].value == pytest.approx(rankme(features).value, rel=1e-9)
    with torch.no_grad():
        layer1 = backbone.layer1(backbone.maxpool(backbone.act1(backbone.bn1(backbone.conv1(images))))).mean(dim=(2, 3))
    assert measures["stage1/effective_rank"].value == pytest.approx(effective_rank(covariance_eigenvalues(layer1)), rel=1e-9)


@pytest.mark.parametrize("pool, token", [("token", "class"), ("avg", "patches")])
def test_vit_stages_are_its_blocks_read_at_the_class_token_or_the_mean_patch_token(pool, token):
    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", num_classes=0, img_size=32, depth=3, global_pool=pool).eval()
    taps = StageTaps(vit)
    assert taps.names == ["blocks.0", "blocks.1", "blocks.2"]
    images = torch.randn(12, 3, 32, 32)
    with torch.no_grad(), taps.recording():
        vit(images)
    with torch.no_grad():
        tokens = vit.blocks[:2](vit.norm_pre(vit._pos_embed(vit.patch_embed(images))))
    second = tokens[:, 0] if token == "class" else tokens[:, vit.num_prefix_tokens:].mean(dim=1)
    measures, _ = stage_measures(taps.reduced())
    assert measures["stage2/effective_rank"].value == pytest.approx(effective_rank(covariance_eigenvalues(second)), rel=1e-9)


def test_ddp_padding_images_are_left_out_of_the_stage_sums():
    """11 images on 3 processes as DistributedSampler deals them (image i to process i % 3, the last round padded
    with images 0 again): the processes' sums, added, are the 11 images' own, each once."""
    from torch.utils.data import DistributedSampler

    torch.manual_seed(0)
    backbone = create_backbone(BackboneConfig(name="resnet18"), 16).eval()
    images = torch.randn(11, 3, 16, 16)
    alone = StageTaps(backbone)
    with torch.no_grad(), alone.recording():
        backbone(images)
    ranks = []
    for rank in range(3):
        order = list(DistributedSampler(range(11), num_replicas=3, rank=rank, shuffle=False))
        assert len(order) == 4  # 12 places for 11 images: process 2's last is image 0 again
        taps = StageTaps(backbone, rank=rank, world=3, total=11)
        with torch.no_grad(), taps.recording():
            for batch in torch.tensor(order).split(3):  # batches of 3, 1
                backbone(images[batch])
        ranks.append(taps.reduced())
    for index, (_, expected) in enumerate(alone.reduced()):
        moments = [found[index][1] for found in ranks]
        assert sum(m.count for m in moments) == 11
        torch.testing.assert_close(sum(m.gram for m in moments), expected.gram, rtol=1e-5, atol=1e-5)  # float32 convolutions batched otherwise
        torch.testing.assert_close(sum(m.total for m in moments), expected.total, rtol=1e-5, atol=1e-5)
