"""zoo.metrics.health: each metric against reference numbers from the papers' formulas, the known cases, bad input."""

import json
import math
from pathlib import Path

import pytest
import torch

from zoo.metrics.health import (
    HEALTH_KEYS,
    alpha_req,
    collapse_indicator,
    feature_std,
    health,
    lidar,
    off_diagonal_correlation,
    rankme,
)
from zoo.metrics.spectrum import covariance_eigenvalues, effective_rank

REFERENCE = json.loads((Path(__file__).parents[1] / "fixtures" / "health_reference.json").read_text())


@pytest.fixture(scope="module")
def inputs():
    """The inputs the reference numbers were computed on (REFERENCE["inputs"])."""
    torch.manual_seed(0)
    embedding = (torch.randn(64, 16) * torch.arange(1, 17).double().pow(-0.75).float() + 0.5).double()
    views = (torch.randn(32, 1, 16) + 0.3 * torch.randn(32, 4, 16)).double()
    return embedding, views


def test_metrics_match_the_reference_numbers(inputs):
    embedding, views = inputs
    std_min, std_mean = feature_std(embedding)
    computed = {
        "rankme": rankme(embedding), "alpha_req": alpha_req(covariance_eigenvalues(embedding)), "lidar": lidar(views),
        "offdiag_correlation": off_diagonal_correlation(embedding), "min_std": std_min, "mean_std": std_mean,
        "collapse_indicator": collapse_indicator(embedding),
    }
    for name, measure in computed.items():
        assert measure.reason is None, name
        assert measure.value == pytest.approx(REFERENCE[name], rel=1e-6), name


def test_float32_input_gives_the_float64_numbers(inputs):
    embedding, views = inputs
    assert rankme(embedding.float()).value == pytest.approx(REFERENCE["rankme"], rel=1e-5)
    assert lidar(views.float()).value == pytest.approx(REFERENCE["lidar"], rel=1e-4)


def test_rankme_is_not_the_covariance_effective_rank(inputs):
    embedding, _ = inputs
    assert rankme(embedding).value != pytest.approx(effective_rank(covariance_eigenvalues(embedding)), rel=1e-3)


def test_rankme_of_isotropic_and_rank_one_embeddings():
    torch.manual_seed(0)
    assert rankme(torch.randn(20000, 32)).value == pytest.approx(32, rel=0.01)
    rank_one = torch.randn(500, 1) * torch.randn(1, 32)
    assert rankme(rank_one).value == pytest.approx(1, abs=0.01)


def test_alpha_req_recovers_the_exponent_of_a_power_law_spectrum():
    spectrum = torch.arange(1, 513, dtype=torch.float64).pow(-1.5)
    assert alpha_req(spectrum).value == pytest.approx(1.5, abs=1e-9)
    assert alpha_req(spectrum[:20]).value == pytest.approx(1.5, abs=1e-9)  # a short spectrum: ranks 6..20


def test_lidar_counts_the_directions_that_separate_samples_beyond_view_noise():
    # LiDAR is a rank: it is scale-free, so views that are pure noise (whose per-sample means differ by noise
    # alone, isotropically) score near D, as samples separated in every direction do; what it tells apart is
    # in how many directions the samples are separated.
    torch.manual_seed(0)
    in_four = torch.randn(256, 1, 16) * torch.tensor([5.0] * 4 + [0.0] * 12) + torch.randn(256, 8, 16)
    in_all = 5 * torch.randn(256, 1, 16) + torch.randn(256, 8, 16)
    assert lidar(in_four).value == pytest.approx(4, abs=0.5)
    assert lidar(in_all).value > 15
    assert lidar(in_all * 1e3).value == pytest.approx(lidar(in_all).value, rel=1e-3)  # up to delta's weight


def test_collapse_indicator_is_one_for_gaussian_and_zero_for_constant_outputs():
    torch.manual_seed(0)
    assert collapse_indicator(torch.randn(4096, 128)).value == pytest.approx(1.0, abs=0.02)
    assert collapse_indicator(torch.ones(512, 128)).value == pytest.approx(0.0, abs=1e-12)


def test_whitening_residuals_of_a_whitened_embedding():
    torch.manual_seed(0)
    x = torch.randn(4096, 16, dtype=torch.float64)
    x = (x - x.mean(0)) @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(x.T))).T
    assert off_diagonal_correlation(x).value == pytest.approx(0, abs=1e-9)
    assert [m.value for m in feature_std(x)] == pytest.approx([1, 1])


NOT_FINITE = torch.randn(64, 16).index_put_((torch.tensor(3), torch.tensor(5)), torch.tensor(float("nan")))


@pytest.mark.parametrize("call, why", [
    (lambda: rankme(torch.randn(1, 16)), "1 samples"),
    (lambda: rankme(NOT_FINITE), "non-finite"),
    (lambda: rankme(torch.zeros(8, 4)), "all-zero"),
    (lambda: alpha_req(torch.rand(7)), "7 eigenvalues"),
    (lambda: alpha_req(torch.tensor([1.0] * 10 + [float("inf")])), "non-finite"),
    (lambda: alpha_req(torch.tensor([1.0] * 6 + [0.0] * 4)), "zero eigenvalues"),
    (lambda: lidar(torch.randn(32, 16)), "samples x views"),
    (lambda: lidar(torch.randn(32, 1, 16)), "1 view"),
    (lambda: lidar(torch.randn(1, 4, 16)), "1 samples"),
    (lambda: lidar(NOT_FINITE.reshape(16, 4, 16)), "non-finite"),
    (lambda: lidar(torch.ones(8, 4, 16)), "same mean"),
    (lambda: off_diagonal_correlation(torch.ones(8, 4)), "0 features"),
    (lambda: feature_std(NOT_FINITE)[0], "non-finite"),
    (lambda: collapse_indicator(NOT_FINITE), "non-finite"),
])
def test_bad_input_gives_none_and_a_reason(call, why):
    measure = call()
    assert measure.value is None and why in measure.reason


def test_health_names_every_key_and_says_why_one_is_missing():
    torch.manual_seed(0)
    backbone, projections = torch.randn(450, 64), torch.randn(450, 7)
    measures = health(backbone, projections, covariance_eigenvalues(backbone), covariance_eigenvalues(projections))
    assert tuple(measures) == HEALTH_KEYS
    assert all(m.value is not None and math.isfinite(m.value) for k, m in measures.items() if k != "projector_alpha_req")
    assert "7 eigenvalues" in measures["projector_alpha_req"].reason  # 7 dimensions: ranks 6..7, too few to fit


def test_validation_prints_a_missing_metric_once_and_keeps_it_none(capsys):
    from types import SimpleNamespace

    from zoo.callbacks import ValidationMetrics

    metrics, trainer = ValidationMetrics(), SimpleNamespace(global_rank=0, global_step=3)
    torch.manual_seed(0)
    backbone, projections = torch.randn(64, 32), torch.randn(64, 4)  # a 4-wide projector: no alpha-ReQ
    eigs = covariance_eigenvalues(backbone), covariance_eigenvalues(projections)
    first = metrics.health_values(trainer, backbone, projections, *eigs)
    second = metrics.health_values(trainer, backbone, projections, *eigs)
    assert first["projector_alpha_req"] is None and second == first
    assert json.loads(json.dumps(first))["projector_alpha_req"] is None  # null in summary.json, never NaN
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["warning: step 3: val/projector_alpha_req not computed: 4 eigenvalues, at least 8 needed for ranks 6..100"]


def test_lidar_with_fewer_views_than_dimensions_equals_the_lda_matrix_of_the_formula():
    # n q < D: the eigenvalues come from n x n matrices; the D x D LDA matrix, written out here, gives the same LiDAR
    torch.manual_seed(0)
    n, q, d = 12, 3, 80
    views = (torch.randn(n, 1, d) * torch.linspace(3, 0.01, d) + 0.5 * torch.randn(n, q, d)).double()
    means = views.mean(dim=1)
    between = (means - means.mean(dim=0)).T @ (means - means.mean(dim=0)) / (n - 1)
    spread = (views - means[:, None]).reshape(n * q, d)
    within = spread.T @ spread / (n * (q - 1)) + 1e-4 * torch.eye(d, dtype=torch.float64)
    w, vectors = torch.linalg.eigh(within)
    inv_sqrt = vectors @ torch.diag(w.rsqrt()) @ vectors.T
    eigenvalues = torch.linalg.eigvalsh(inv_sqrt @ between @ inv_sqrt).clamp_min(0)
    p = eigenvalues / eigenvalues.sum() + 1e-8
    assert lidar(views).value == pytest.approx(float(torch.exp(-(p * p.log()).sum())), rel=1e-10)


def test_rankme_from_running_sums_equals_rankme_of_the_features():
    from zoo.metrics.health import rankme_of_singular_values
    from zoo.metrics.spectrum import Moments

    torch.manual_seed(0)
    for shape in ((300, 24), (20, 64)):  # more samples than features, and fewer
        features = torch.randn(*shape).relu() + 0.1
        moments = Moments(shape[1])
        for part in features.split(7):
            moments.update(part)
        assert rankme_of_singular_values(moments.singular_values()).value == pytest.approx(rankme(features).value, rel=1e-9)
        assert rankme(features).value == pytest.approx(
            rankme_of_singular_values(torch.linalg.svdvals(features.double())).value, rel=1e-9)  # Gram = SVD
        assert torch.allclose(moments.eigenvalues(), covariance_eigenvalues(features), rtol=1e-9, atol=1e-12)


def test_non_finite_embeddings_of_stages_and_views_give_none_and_a_reason():
    from zoo.metrics.health import lidar_of_views
    from zoo.metrics.spectrum import Moments
    from zoo.metrics.stages import stage_measures

    moments = Moments(16)
    moments.update(NOT_FINITE)
    measures, spectra = stage_measures([("layer1", moments)])
    assert spectra == [None]
    assert {key: m.value for key, m in measures.items()} == {"stage1/effective_rank": None, "stage1/rankme": None}
    assert all("non-finite" in m.reason for m in measures.values())

    def encode(images):  # a backbone whose features overflowed
        return torch.full((len(images), 16), float("nan")), torch.randn(len(images), 8)

    measured = lidar_of_views(encode, [torch.zeros(4, 3, 3, 8, 8)])
    assert measured["lidar"].value is None and "non-finite" in measured["lidar"].reason
    assert measured["projector_lidar"].value is not None
