"""Ensembles and calibrated intervals: DECODE(n_members=...), get_fractions(return_interval=True) and
tl.deconvolve(uncertainty=True)."""

from __future__ import annotations

import numpy as np
import pytest
import scvi
import torch

import decode_omics as dco
from decode_omics.model import DECODE, DECODEEnsemble
from decode_omics.model._intervals import (
    CONTENT_SHIFT,
    DEFAULT_REACH,
    UNEXPLAINED_WEIGHTS,
    _narrowest_scale,
    conformal_quantile,
    intervals,
)

from .conftest import reference_and_bulk

EPOCHS = {"max_epochs": 8, "n_pseudotissues": 512, "n_validation": 128, "enable_progress_bar": False}
SMALL = {"n_hidden": 64, "n_latent": 16}


@pytest.fixture(scope="module")
def data():
    return reference_and_bulk(seed=3, n_samples=24)


def _registered(data, seed: int = 0):
    """Copies of the reference and the bulk, registered with DECODE, with scvi-tools' seed set."""
    ref, bulk = data[0].copy(), data[1].copy()
    scvi.settings.seed = seed
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    return ref, bulk


@pytest.fixture(scope="module")
def ensemble(data):
    ref, bulk = _registered(data)
    model = DECODE(ref, bulk, n_members=3, **SMALL)
    model.train(**EPOCHS)
    return model


def test_ensemble_members_differ_and_average(ensemble, data):
    assert isinstance(ensemble.module, DECODEEnsemble)
    assert len(ensemble.module.members) == 3
    # every member has its own input transform, each reading every feature
    assert all(m.encoder.transform is not ensemble.module.transform for m in ensemble.module.members[1:])
    assert all(bool((m.transform.mask == 1).all()) for m in ensemble.module.members)
    import torch

    x = torch.as_tensor(ensemble._bulk_source(None).matrix()[:5])
    with torch.inference_mode():
        each = ensemble.module.member_fractions(x)
    assert each.shape[0] == 3
    assert float((each[0] - each[1]).abs().max()) > 1e-4  # their own initial weights
    fractions = ensemble.get_fractions()
    np.testing.assert_allclose(fractions.sum(axis=1), 1, atol=1e-5)
    truth = data[1].obsm["fractions"][fractions.columns]
    assert dco.metrics.ccc(fractions, truth) > 0.8


def test_intervals_hold_the_estimate_and_cover(ensemble, data):
    est, lower, upper = ensemble.get_fractions(return_interval=True)
    assert est.shape == lower.shape == upper.shape
    assert (lower.index == est.index).all() and list(upper.columns) == list(est.columns)
    np.testing.assert_allclose(est, ensemble.get_fractions(), atol=1e-6)  # the central estimate is the average
    assert (lower.to_numpy() <= est.to_numpy() + 1e-9).all() and (est.to_numpy() <= upper.to_numpy() + 1e-9).all()
    assert lower.to_numpy().min() >= 0 and upper.to_numpy().max() <= 1
    truth = data[1].obsm["fractions"][est.columns]
    inside = ((truth >= lower) & (truth <= upper)).to_numpy().mean()
    assert inside >= 0.6  # same platform: the pseudo-tissue calibration applies
    # a higher level gives wider intervals
    _, lo99, up99 = ensemble.get_fractions(return_interval=True, level=0.99)
    assert ((up99 - lo99).to_numpy() >= (upper - lower).to_numpy() - 1e-9).all()
    assert ((up99 - lo99).to_numpy().mean()) > (upper - lower).to_numpy().mean()
    with pytest.raises(ValueError, match="level"):
        ensemble.get_fractions(return_interval=True, level=1.5)


def test_calibration_recorded(ensemble):
    cal = ensemble.interval_calibration_
    assert cal["n_samples"] > 100
    assert set(cal["scores"]) == set(ensemble.labels_)
    assert cal["shift"] >= 0 and "correction effect" in cal["shift_from"]
    assert cal["floor"] in (0.0, 0.01, 0.05, 0.25, 1.0)
    assert "unexplained_weight" not in cal  # cohorts without missing material: each sample's share is not read


def test_intervals_widen_with_each_samples_unexplained_share(ensemble):
    """The package's intervals are those of the calibration at each sample's unexplained share, as the unknown head
    reads it; a calibration that weighs the share widens the samples the reference explains less of."""
    source, per_member, columns = ensemble._fractions_source(None, None, None, "auto", True)
    with torch.inference_mode():
        members = per_member(torch.as_tensor(source.matrix())).numpy().astype(np.float64)
    shares = ensemble.get_unexplained().to_numpy()
    kept = ensemble.interval_calibration_
    try:
        ensemble.calibrate_intervals(unknown_share=0.4)  # cohorts with missing material: the weight is chosen
        assert ensemble.interval_calibration_["unexplained_weight"] in UNEXPLAINED_WEIGHTS
        calibration = dict(ensemble.interval_calibration_, unexplained_weight=0.4)  # and one above 0 is applied
        ensemble.interval_calibration_ = calibration
        _, lower, upper = ensemble.get_fractions(return_interval=True)
    finally:
        ensemble.interval_calibration_ = kept
    _, lo, up = intervals(calibration, members, columns, 0.9, shares)
    np.testing.assert_allclose(lower.to_numpy(), lo, atol=1e-5)
    np.testing.assert_allclose(upper.to_numpy(), up, atol=1e-5)
    # the same samples with no unexplained share, then each with 0.5: every interval at least as wide, wider on average
    _, lo0, up0 = intervals(calibration, members, columns, 0.9, np.zeros_like(shares))
    _, lo1, up1 = intervals(calibration, members, columns, 0.9, np.full_like(shares, 0.5))
    assert ((up1 - lo1) >= (up0 - lo0) - 1e-12).all() and (up1 - lo1).mean() > (up0 - lo0).mean() + 0.01
    with pytest.raises(ValueError, match="unexplained share"):
        intervals(calibration, members, columns, 0.9)
    # a calibration without the weight (saved before, or weight 0) reads no share: the intervals of before
    old = {k: v for k, v in kept.items() if k != "unexplained_weight"}
    _, lo_old, up_old = intervals(old, members, columns, 0.9)
    _, lo_w0, up_w0 = intervals(dict(old, unexplained_weight=0.0), members, columns, 0.9, shares)
    np.testing.assert_array_equal(lo_old, lo_w0)
    np.testing.assert_array_equal(up_old, up_w0)


def test_the_unexplained_weight_is_chosen_where_the_share_tells_the_error():
    """On held-out samples whose errors grow with their unexplained share, a weight above 0 gives narrower intervals
    at the same coverage and is chosen; where the share says nothing about the error, none is."""
    rng = np.random.default_rng(0)
    n, k = 4000, 3
    estimate = rng.dirichlet(np.ones(k), n)
    spread = np.full((n, k), 0.01)
    shares = rng.uniform(0, 0.6, n)
    errors = rng.normal(0, 1, (n, k))
    floor, weight = _narrowest_scale(estimate, spread, estimate + 0.3 * shares[:, None] * errors, shares)
    assert weight > 0
    floor, weight = _narrowest_scale(estimate, spread, estimate + 0.05 * errors, shares)
    assert weight == 0
    assert _narrowest_scale(estimate, spread, estimate + 0.05 * errors) == (floor, 0.0)  # no shares: no weight


def test_intervals_are_calibrated_when_first_asked_for_with_the_training_seed(data, monkeypatch):
    """train() leaves the calibration for later: a fit without intervals does not pay for it, and the calibration
    made later draws from the training seed's streams, whatever the seed is by then."""
    import decode_omics.model._model as model_module

    calls = []
    real = model_module.fit_interval_calibration
    monkeypatch.setattr(model_module, "fit_interval_calibration", lambda *a, **k: calls.append(k) or real(*a, **k))
    ref, bulk = _registered(data, seed=5)
    model = DECODE(ref, bulk, n_members=2, **SMALL)
    model.train(**EPOCHS)
    model.get_fractions()
    assert calls == []  # not calibrated by train() nor by fractions without intervals
    scvi.settings.seed = 11
    model.get_fractions(return_interval=True)
    assert len(calls) == 1 and calls[0]["seed"] == 5
    model.get_fractions(return_interval=True, level=0.5)
    assert len(calls) == 1  # calibrated once
    lazy = model.interval_calibration_
    scvi.settings.seed = 5
    model.calibrate_intervals()  # at once, with the current seed: the training seed again
    assert model.interval_calibration_["scores"] == lazy["scores"]
    # train() again drops the calibration of the earlier network and leaves a new one for later
    scvi.settings.seed = 5
    model.train(**EPOCHS)
    assert model._pending_calibration is not None


def test_save_calibrates_a_model_not_yet_calibrated(data, tmp_path):
    ref, bulk = _registered(data, seed=2)
    model = DECODE(ref, bulk, **SMALL)
    model.train(**EPOCHS)
    model.save(tmp_path / "m")
    loaded = DECODE.load(tmp_path / "m")
    assert loaded.interval_calibration_["scores"] == model.interval_calibration_["scores"]
    _, lower, upper = loaded.get_fractions(bulk, return_interval=True)
    assert (upper.to_numpy() >= lower.to_numpy()).all()


def test_members_scale_their_input_from_their_own_pseudotissues(data):
    ref, bulk = _registered(data)
    scales = [m.transform.scale for m in DECODE(ref, bulk, n_members=3, standardize=True, **SMALL).module.members]
    assert all(float((s - scales[0]).abs().max()) > 0 for s in scales[1:])
    scvi.settings.seed = 0
    one = DECODE(ref, bulk, standardize=True, **SMALL).module  # the first member scales as one network of its seed
    assert torch.equal(one.transform.scale, scales[0])


def test_an_ensemble_saved_with_one_shared_transform_loads_as_it_was(data, tmp_path):
    """Models saved before the members had their own input transforms (one transform, shared) predict the same."""
    ref, bulk = _registered(data)
    model = DECODE(ref, bulk, n_members=3, standardize=True, **SMALL)
    for member in model.module.members[1:]:
        member.encoder.transform = model.module.members[0].encoder.transform
    model.train(**EPOCHS | {"max_epochs": 2})
    model.save(tmp_path / "m")
    loaded = DECODE.load(tmp_path / "m", bulk=bulk)
    for x, y in zip(model.get_fractions(return_interval=True), loaded.get_fractions(return_interval=True), strict=True):
        np.testing.assert_array_equal(x.to_numpy(), y.to_numpy())
    first = loaded.module.members[0].transform.scale
    assert all(torch.equal(m.transform.scale, first) for m in loaded.module.members)


def test_ensemble_save_load_round_trip(ensemble, tmp_path):
    ensemble.save(tmp_path / "m")
    loaded = DECODE.load(tmp_path / "m", bulk=ensemble.bulk_)
    assert loaded.n_members_ == 3
    a = ensemble.get_fractions(return_interval=True)
    b = loaded.get_fractions(return_interval=True)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-6)


def test_same_seed_same_ensemble(data):
    ref, bulk = data

    def fit():
        r, b = ref.copy(), bulk.copy()
        scvi.settings.seed = 4
        DECODE.setup_anndata(r, labels_key="cell_type")
        DECODE.setup_anndata(b)
        model = DECODE(r, b, n_members=2, **SMALL)
        model.train(**EPOCHS | {"max_epochs": 2})
        return model.get_fractions(return_interval=True)

    for x, y in zip(fit(), fit(), strict=True):
        np.testing.assert_array_equal(x.to_numpy(), y.to_numpy())


def test_single_network_intervals(data):
    ref, bulk = data
    ref, bulk = ref.copy(), bulk.copy()
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk, **SMALL)
    model.train(**EPOCHS | {"max_epochs": 2})
    _, lower, upper = model.get_fractions(return_interval=True)
    assert ((upper - lower).to_numpy() > 0).all()  # the fraction term alone still gives a width


def test_bad_members():
    ref, _ = reference_and_bulk(seed=1, n_samples=6, cells_per_label=40)
    DECODE.setup_anndata(ref, labels_key="cell_type")
    with pytest.raises(ValueError, match="n_members"):
        DECODE(ref, n_members=0)


def test_model_without_calibration_says_so(ensemble, tmp_path):
    ensemble.save(tmp_path / "m")
    loaded = DECODE.load(tmp_path / "m")
    loaded.interval_calibration_ = None
    with pytest.raises(ValueError, match="no interval calibration"):
        loaded.get_fractions(ensemble.bulk_, return_interval=True)


def test_conformal_quantile_and_intervals_arithmetic():
    scores = list(np.arange(1, 10, dtype=float))  # 9 sorted scores
    assert conformal_quantile(scores, 0.9) == 9.0  # ceil(10 * 0.9) = 9th
    assert conformal_quantile(scores, 0.5) == 5.0
    members = np.array([[[0.2, 0.8]], [[0.4, 0.6]]])  # 2 members, 1 sample, 2 labels
    calibration = {"scores": {"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0]}}
    est, lo, hi = intervals(calibration, members, ["a", "b"], 0.5)
    np.testing.assert_allclose(est, [[0.3, 0.7]])
    sd = np.std([0.2, 0.4], ddof=1)
    half = 2.0 * (np.sqrt(sd**2 + 0.01 * 0.3 * 0.7) + 1e-4)
    np.testing.assert_allclose(lo, [[0.3 - half, 0.7 - half]])
    np.testing.assert_allclose(hi, [[0.3 + half, 0.7 + half]])


def test_deconvolve_uncertainty_writes_documented_fields(data):
    ref, bulk = data
    out = dco.tl.deconvolve(
        bulk, ref, "cell_type", uncertainty=True, model_kwargs={"n_members": 2} | SMALL, train_kwargs=EPOCHS, copy=True
    )
    for key in ("decode", "decode_lower", "decode_upper"):
        assert list(out.obsm[key].columns) == list(out.obsm["decode"].columns)
    width = (out.obsm["decode_upper"] - out.obsm["decode_lower"]).mean(axis=1)
    np.testing.assert_allclose(out.obs["decode_interval_width"], width)
    u = out.uns["decode"]["uncertainty"]
    assert u["level"] == 0.9 and u["n_members"] == 2 and u["shift"] >= 0
    assert "unknown_content_shift" not in u  # relative mode has no unknown share
    assert (u["unknown_share"], u["unknown_share_from"]) == (0.0, "given")
    assert np.isfinite(out.obs["decode_reference_fit"]).all()
    assert "decode_lower" not in bulk.obsm  # input untouched with copy=True
    with pytest.raises(ValueError, match="level"):
        dco.tl.deconvolve(bulk, ref, "cell_type", uncertainty=True, level=0, copy=True)
    # intervals that allow for material the reference lacks: the same fit, wider intervals
    lacking = dco.tl.deconvolve(bulk, ref, "cell_type", uncertainty=True, unknown_share=0.5, copy=True,
                                model_kwargs={"n_members": 2} | SMALL, train_kwargs=EPOCHS)  # fmt: skip
    np.testing.assert_allclose(lacking.obsm["decode"], out.obsm["decode"], atol=1e-6)
    assert lacking.uns["decode"]["uncertainty"]["unknown_share"] == 0.5
    assert lacking.obs["decode_interval_width"].mean() > out.obs["decode_interval_width"].mean()
    with pytest.raises(ValueError, match="pass uncertainty=True"):
        dco.tl.deconvolve(bulk, ref, "cell_type", unknown_share="auto", copy=True)
    with pytest.raises(ValueError, match="in absolute mode give a share"):
        dco.tl.deconvolve(bulk, ref, "cell_type", mode="absolute", uncertainty=True, unknown_share="auto", copy=True)


def test_deconvolve_uncertainty_absolute_mode_bounds_the_unknown_share(data):
    ref, bulk = data
    out = dco.tl.deconvolve(bulk, ref, "cell_type", mode="absolute", uncertainty=True,
                            model_kwargs={"n_members": 2} | SMALL, train_kwargs=EPOCHS, copy=True)  # fmt: skip
    lower, upper = out.obsm["decode_lower"], out.obsm["decode_upper"]
    assert "unknown" in lower.columns and (upper["unknown"] > lower["unknown"]).all()
    u = out.uns["decode"]["uncertainty"]
    assert u["unknown_content_shift"] == u["content_shift"] == CONTENT_SHIFT  # the unknown material's own factor
    assert (u["unknown_share"], u["unknown_share_from"]) == (0.8, DEFAULT_REACH)  # beyond the head's 0.5
    # calibrated within the head's reach only: the same fit, a narrower interval of the unknown share
    within = dco.tl.deconvolve(bulk, ref, "cell_type", mode="absolute", uncertainty=True, unknown_share=0.5,
                               model_kwargs={"n_members": 2} | SMALL, train_kwargs=EPOCHS, copy=True)  # fmt: skip
    np.testing.assert_allclose(within.obsm["decode"], out.obsm["decode"], atol=1e-6)
    given = within.uns["decode"]["uncertainty"]
    assert (given["unknown_share"], given["unknown_share_from"]) == (0.5, "given")
    width = [(o.obsm["decode_upper"] - o.obsm["decode_lower"])["unknown"].mean() for o in (out, within)]
    assert width[1] < width[0]


def test_deconvolve_uncertainty_mudata(data):
    import mudata

    ref, bulk = data
    mdata = mudata.MuData({"rna": bulk.copy()})
    dco.tl.deconvolve(
        mdata, {"rna": ref}, "cell_type", uncertainty=True, model_kwargs={"n_members": 2} | SMALL, train_kwargs=EPOCHS
    )
    for suffix in ("", "_lower", "_upper"):
        assert mdata.obsm[f"decode_rna{suffix}"].shape == (bulk.n_obs, 4)
    assert "decode_lower" in mdata["rna"].obsm


def test_intervals_widen_for_a_bulk_far_from_the_reference(ensemble, data):
    """A bulk measured on another 'platform' (every feature with its own gain) is calibrated with a larger shift, and
    its intervals are wider than those of a bulk from the reference's platform."""
    from decode_omics.model._intervals import fit_interval_calibration

    _, bulk = data
    shifted = bulk.copy()
    shifted.X = np.asarray(shifted.X) * np.exp(np.random.default_rng(0).normal(0, 0.8, shifted.n_vars))
    saved = ensemble.bulk_manager_, ensemble.bulk_, ensemble.interval_calibration_
    try:
        ensemble.bulk_manager_, ensemble.bulk_ = None, shifted
        far = fit_interval_calibration(ensemble)
    finally:
        ensemble.bulk_manager_, ensemble.bulk_, ensemble.interval_calibration_ = saved
    near = ensemble.interval_calibration_
    assert far["shift"] > near["shift"]
    members = np.stack([np.full((1, 4), 0.25)] * 3)  # the same estimate read with both calibrations
    labels = ensemble.labels_
    _, lo_far, up_far = intervals(far, members, labels, 0.9)
    _, lo_near, up_near = intervals(near, members, labels, 0.9)
    assert (up_far - lo_far).mean() > (up_near - lo_near).mean()


def test_calibration_at_a_given_shift_widens_with_it(ensemble):
    """A given shift replaces the matched one (the benchmark's diagnosis of the shift the truth would need), and a
    larger one gives wider intervals; a negative one is refused."""
    from decode_omics.model._intervals import fit_interval_calibration

    small, large = (fit_interval_calibration(ensemble, shift=s) for s in (0.0, 1.0))
    assert (small["shift"], small["shift_from"], large["shift"]) == (0.0, "given", 1.0)
    members = np.stack([np.full((1, 4), 0.25)] * 3)

    def width(calibration):
        _, lower, upper = intervals(calibration, members, ensemble.labels_, 0.9)
        return float((upper - lower).mean())

    assert width(large) > width(small)
    with pytest.raises(ValueError, match="shift must be >= 0"):
        fit_interval_calibration(ensemble, shift=-0.1)


def test_unknown_share_widens_relative_intervals_and_auto_follows_the_bulk(ensemble, data, monkeypatch):
    """Relative mode: calibration cohorts carrying material the reference lacks give wider intervals; "auto" matches
    the share to the registered bulk's unexplained share, so a bulk holding new material gets a larger one than a bulk
    mixed from the reference's own labels; what cannot apply is refused with the reason."""
    from types import SimpleNamespace

    import decode_omics.model._intervals as intervals_module
    from decode_omics.model._calibration import log_residual_spread
    from decode_omics.model._intervals import check_unknown_share, fit_interval_calibration

    plain = ensemble.interval_calibration_
    assert (plain["unknown_share"], plain["unknown_share_from"]) == (0.0, "given")
    given = fit_interval_calibration(ensemble, unknown_share=0.5)
    assert given["unknown_share"] == 0.5
    members = np.stack([np.full((1, 4), 0.25)] * 3)

    def width(calibration):  # of a sample whose unexplained share is 0.2 (read where the calibration weighs it)
        _, lower, upper = intervals(calibration, members, ensemble.labels_, 0.9, np.full(1, 0.2))
        return float((upper - lower).mean())

    assert width(given) > width(plain)
    # The matching, read through a measure of unexplained material that needs no training (the fit by the label
    # profiles): the unknown head of a network trained for seconds reads every sample alike, and how well a trained
    # one reads real bulk is measured on the uncertainty page.
    monkeypatch.setattr(intervals_module, "unexplained", lambda model, X: log_residual_spread(X, model._sampler.mean))
    _, bulk = data
    rng = np.random.default_rng(0)
    X = np.asarray(bulk.X, dtype=np.float64)
    new_type = X.mean(axis=0) * np.exp(rng.normal(0, 1.5, bulk.n_vars))  # a cell type the reference lacks
    holding = bulk.copy()
    holding.X = X + X.sum(axis=1, keepdims=True) / new_type.sum() * new_type * rng.uniform(0.4, 0.8, (bulk.n_obs, 1))
    saved = ensemble.bulk_manager_, ensemble.bulk_, ensemble.interval_calibration_
    try:
        ensemble.bulk_manager_, ensemble.bulk_ = None, bulk
        own = fit_interval_calibration(ensemble, unknown_share="auto", shift=0.0)
        ensemble.bulk_ = holding
        lacking = fit_interval_calibration(ensemble, unknown_share="auto", shift=0.0)
    finally:
        ensemble.bulk_manager_, ensemble.bulk_, ensemble.interval_calibration_ = saved
    assert own["unknown_share_from"].startswith("matched to the registered bulk's median unexplained share")
    assert lacking["unknown_share"] > own["unknown_share"] + 0.2
    assert width(lacking) > width(own)
    # matched at 0, the cohorts are those of the default calibration (the matching draws from a stream of its own)
    monkeypatch.setattr(intervals_module, "unexplained", lambda model, X: np.zeros(len(X)))
    none = fit_interval_calibration(ensemble, unknown_share="auto", shift=0.0)
    assert none["unknown_share"] == 0.0
    assert none["scores"] == fit_interval_calibration(ensemble, shift=0.0)["scores"]
    # a bulk so far from every mix of the labels that a platform shift reads as unexplained: not matched, and said
    monkeypatch.setattr(intervals_module, "log_residual_spread", lambda X, profiles: np.full(len(X), 3.0))
    with pytest.warns(UserWarning, match="reference fit 3.00"):
        far = fit_interval_calibration(ensemble, unknown_share="auto", shift=0.0)
    assert far["unknown_share"] == 0.0 and far["unknown_share_from"].startswith("not matched")
    for bad in (1.5, -0.1, "all"):
        with pytest.raises(ValueError, match="unknown_share must be"):
            fit_interval_calibration(ensemble, unknown_share=bad)
    check_unknown_share(SimpleNamespace(mode_="absolute"), 0.3)  # absolute mode: the cohorts' reach
    with pytest.raises(ValueError, match="in absolute mode give a share"):
        check_unknown_share(SimpleNamespace(mode_="absolute"), "auto")
    head = SimpleNamespace(unknown=None)
    with pytest.raises(ValueError, match="needs the unknown head"):
        check_unknown_share(SimpleNamespace(mode_="relative", module=SimpleNamespace(head=head)), "auto")


def test_content_shift_widens_and_recalibrates_without_training(ensemble):
    """Labels whose amount per cell differs between bulk and reference (content shift) make the truth of the held-out
    cohorts differ from their material fractions, so the intervals widen with it; calibrate_intervals sets it on a
    trained model without training again (the network's weights are unchanged), and a negative one is refused."""
    import copy

    import torch

    from decode_omics.model._intervals import content_truth

    y = np.random.default_rng(0).dirichlet(np.ones(4), 128)
    assert content_truth(y, 0.0, False, np.random.default_rng(1)) is y
    shifted = content_truth(y, 0.5, False, np.random.default_rng(1))
    np.testing.assert_allclose(shifted.sum(axis=1), 1.0)
    assert not np.allclose(shifted, y)
    # one factor per label and cohort: within a cohort the ratio of two labels' odds is one constant
    ratio = (shifted[:64, 0] / shifted[:64, 1]) / (y[:64, 0] / y[:64, 1])
    np.testing.assert_allclose(ratio, ratio[0])
    # absolute mode: the unknown material draws a factor of its own, as large unless given
    absolute = np.hstack([y * 0.8, np.full((128, 1), 0.2)])
    assert content_truth(absolute, 0.0, True, np.random.default_rng(1), unknown_sigma=0.0) is absolute
    only_unknown = content_truth(absolute, 0.0, True, np.random.default_rng(1), unknown_sigma=0.5)
    np.testing.assert_allclose(only_unknown[:, 0] / only_unknown[:, 1], y[:, 0] / y[:, 1])  # known split kept
    cohort_shares = only_unknown[::64, -1]
    np.testing.assert_allclose(only_unknown[:64, -1], cohort_shares[0])  # one factor per cohort
    assert not np.allclose(cohort_shares, 0.2) and cohort_shares[0] != cohort_shares[1]
    both = content_truth(absolute, 0.5, True, np.random.default_rng(1))
    np.testing.assert_allclose(both.sum(axis=1), 1.0)
    assert not np.allclose(both[:, -1], 0.2)

    model = copy.copy(ensemble)
    weights = {k: v.clone() for k, v in ensemble.module.state_dict().items()}
    assert ensemble.interval_calibration_["content_shift"] == CONTENT_SHIFT
    members = np.stack([np.full((1, 4), 0.25)] * 3)

    def width():
        _, lower, upper = intervals(model.interval_calibration_, members, model.labels_, 0.9)
        return float((upper - lower).mean())

    model.calibrate_intervals(content_shift=0.0)
    narrow = width()
    model.calibrate_intervals(content_shift=1.0)
    assert model.interval_calibration_["content_shift"] == 1.0 and width() > narrow
    assert all(torch.equal(v, weights[k]) for k, v in model.module.state_dict().items())
    with pytest.raises(ValueError, match="content_shift must be >= 0"):
        model.calibrate_intervals(content_shift=-0.1)


def test_each_member_learns_as_if_trained_alone(ensemble):
    """The ensemble's training step gives every member the gradient of its own loss on its own part of the batch
    (every third sample for the second of three members; a mean over members would scale the data term by
    1 / n_members against Adam's coupled weight decay)."""
    import copy

    import torch

    from decode_omics.model import DECODETrainingPlan

    module = copy.deepcopy(ensemble.module)
    module.eval()  # no dropout: both passes see the same network
    plan = DECODETrainingPlan(module, input_noise=0.0, adversarial=False)
    plan.log = lambda *args, **kwargs: None
    batch = {k: torch.as_tensor(v) for k, v in ensemble._sampler.sample(48, np.random.default_rng(0)).items()}

    plan.training_step(batch, 0).backward()
    member = module.members[1]
    from_ensemble = [p.grad.clone() for p in member.parameters() if p.grad is not None]
    module.zero_grad()
    own = {k: v[1::3] for k, v in batch.items()}
    plan._network_losses(member, own, train=True)["loss"].backward()
    alone = [p.grad.clone() for p in member.parameters() if p.grad is not None]
    assert len(alone) == len(from_ensemble) > 0
    for a, b in zip(alone, from_ensemble, strict=True):
        torch.testing.assert_close(a, b)
    # not the gradient of the whole batch: the members train on different pseudo-tissues
    module.zero_grad()
    plan._network_losses(member, batch, train=True)["loss"].backward()
    whole = [p.grad.clone() for p in member.parameters() if p.grad is not None]
    assert any(not torch.allclose(a, b) for a, b in zip(whole, from_ensemble, strict=True))


def test_each_member_trains_on_a_draw_of_its_own(ensemble):
    """Every epoch draws each member's pseudo-tissues, and the artificial noise cells of their noisy views, apart:
    member i's rows of every batch (i, i + n, ...) are exactly its own draw, and no two members share noise cells."""
    from decode_omics.model._pseudotissues import TrainingBatches

    sampler = ensemble._sampler
    draws, noise_pools = [], []
    original_sample, original_noise = sampler.sample, sampler.generator.noise_cells

    def sample(n, rng, absolute=False, views=True):
        out = original_sample(n, rng, absolute, views)
        draws.append(out)
        return out

    def noise_cells(rng, n, cells=None):
        out = original_noise(rng, n, cells)
        noise_pools.append(out)
        return out

    sampler.sample, sampler.generator.noise_cells = sample, noise_cells
    try:
        loader = TrainingBatches(sampler, 3 * 40, 3 * 16, seed=0, n_members=3)
        batches = list(loader)
    finally:
        del sampler.sample, sampler.generator.noise_cells
    assert len(draws) == 3 and len(noise_pools) == 3 and len(batches) == len(loader) == 3
    assert not any(np.array_equal(noise_pools[i], noise_pools[j]) for i, j in ((0, 1), (0, 2), (1, 2)))
    for i, draw in enumerate(draws):
        seen = torch.cat([b["x1"][i::3] for b in batches]).numpy()
        assert seen.shape == draw["x1"].shape
        # the same rows, in the member's own random order
        np.testing.assert_array_equal(np.sort(seen, axis=0), np.sort(draw["x1"], axis=0))
        assert not np.array_equal(seen, draw["x1"])
    with pytest.raises(ValueError, match="multiples of n_members"):
        TrainingBatches(sampler, 100, 48, seed=0, n_members=3)


def test_the_first_member_alone_reports_the_unexplained_share(ensemble, data, tmp_path):
    """Relative mode: the unknown head, which only reports, is the first member's alone; the others skip its view."""
    heads = [m.head.unknown is not None for m in ensemble.module.members]
    assert heads == [True, False, False]
    assert ensemble.module_kwargs_["unknown_head_members"] == 1
    x = torch.as_tensor(ensemble._bulk_source(None, platform_correction=False).matrix())
    with torch.inference_mode():
        first = ensemble.module.members[0].unexplained(x, denoise=ensemble.denoise_).numpy()
    np.testing.assert_allclose(ensemble.get_unexplained().to_numpy(), first, rtol=1e-6)
    assert "unknown_loss_train" in ensemble.history_
    ensemble.save(tmp_path / "m")
    loaded = DECODE.load(tmp_path / "m", bulk=ensemble.bulk_)
    assert [m.head.unknown is not None for m in loaded.module.members] == heads
    np.testing.assert_array_equal(loaded.get_unexplained().to_numpy(), ensemble.get_unexplained().to_numpy())


def test_only_the_members_that_learn_from_it_draw_the_view_with_unknown_material(ensemble):
    """Training batches: ``xu`` / ``u`` hold the listed members' rows alone, each exactly its own draw; validation
    batches keep those members' rows of their one draw."""
    from decode_omics.model._pseudotissues import TrainingBatches, ValidationBatches

    sampler = ensemble._sampler
    draws = []
    original_sample = sampler.sample

    def sample(n, rng, absolute=False, views=True):
        out = original_sample(n, rng, absolute, views)
        draws.append(out)
        return out

    sampler.sample = sample
    try:
        batches = list(TrainingBatches(sampler, 3 * 40, 3 * 16, seed=0, unknown_view=[1], n_members=3))
    finally:
        del sampler.sample
    assert ["xu" in d for d in draws] == [False, True, False]
    for b in batches:
        assert b["xu"].shape[0] == b["u"].shape[0] == b["x"].shape[0] // 3
    # member 1's rows of xu and of the clean view are the same pseudo-tissues (xu = x + unknown material)
    xu, x = torch.cat([b["xu"] for b in batches]), torch.cat([b["x"][1::3] for b in batches])
    assert bool((xu >= x - 1e-4).all()) and float((xu - x).sum()) > 0
    np.testing.assert_array_equal(np.sort(xu.numpy(), axis=0), np.sort(draws[1]["xu"], axis=0))

    every = ValidationBatches(sampler, 3 * 32, 3 * 16, seed=0, unknown_view=True, n_members=3)
    first = ValidationBatches(sampler, 3 * 32, 3 * 16, seed=0, unknown_view=[0], n_members=3)
    for a, b in zip(every, first, strict=True):
        torch.testing.assert_close(a["x"], b["x"])
        torch.testing.assert_close(a["xu"][0::3], b["xu"])


def test_an_ensemble_saved_with_an_unknown_head_in_every_member_loads_as_it_was(data, tmp_path):
    """Ensembles saved before the first member alone had the unknown head (every member had one) load with theirs,
    and their unexplained share stays the members' average."""
    ref, bulk = _registered(data)
    model = DECODE(ref, bulk, n_members=2, **SMALL)
    del model.module_kwargs_["unknown_head_members"]
    model._build_module()
    assert all(m.head.unknown is not None for m in model.module.members)
    model.train(**EPOCHS | {"max_epochs": 2})
    model.save(tmp_path / "m")
    loaded = DECODE.load(tmp_path / "m", bulk=bulk)
    assert all(m.head.unknown is not None for m in loaded.module.members)
    np.testing.assert_array_equal(loaded.get_unexplained().to_numpy(), model.get_unexplained().to_numpy())
    x = torch.as_tensor(model._bulk_source(None, platform_correction=False).matrix())
    with torch.inference_mode():
        each = [m.unexplained(x, denoise=model.denoise_).numpy() for m in model.module.members]
    np.testing.assert_allclose(model.get_unexplained().to_numpy(), np.mean(each, axis=0), rtol=1e-6)


def test_absolute_mode_gives_every_member_an_unknown_head_and_bad_counts_are_refused(data):
    """Absolute mode: the unknown share is part of the estimate, so every member learns it."""
    ref, bulk = _registered(data)
    absolute = DECODE(ref, bulk, mode="absolute", n_members=2, **SMALL).module
    assert all(m.head.unknown is not None for m in absolute.members)
    with pytest.raises(ValueError, match="unknown_head_members must be between 1 and n_members"):
        DECODEEnsemble(2, 5, 3, unknown_head=True, unknown_head_members=3)


def test_the_first_member_learns_the_unknown_share_from_its_own_rows_as_if_trained_alone(ensemble):
    """With the view with unknown material drawn for the first member alone, the training step gives that member
    the gradient of its own loss (unknown loss included) on its own rows, and the others theirs without it."""
    import copy

    from decode_omics.model import DECODETrainingPlan
    from decode_omics.model._pseudotissues import TrainingBatches

    module = copy.deepcopy(ensemble.module)
    module.eval()  # no dropout: both passes see the same network
    plan = DECODETrainingPlan(module, input_noise=0.0, adversarial=False)
    plan.log = lambda *args, **kwargs: None
    batch = next(iter(TrainingBatches(ensemble._sampler, 3 * 48, 3 * 16, seed=0, unknown_view=[0], n_members=3)))
    assert batch["xu"].shape[0] == 16
    plan.training_step(batch, 0).backward()
    for i, member in enumerate(module.members):
        from_ensemble = [p.grad.clone() for p in member.parameters() if p.grad is not None]
        module.zero_grad()
        own = {k: v[i::3] for k, v in batch.items() if k not in ("xu", "u")}
        if i == 0:
            own |= {"xu": batch["xu"], "u": batch["u"]}
        losses = plan._network_losses(member, own, train=True)
        assert ("unknown_loss" in losses) == (i == 0)
        losses["loss"].backward()
        alone = [p.grad.clone() for p in member.parameters() if p.grad is not None]
        assert len(alone) == len(from_ensemble) > 0
        for a, b in zip(alone, from_ensemble, strict=True):
            torch.testing.assert_close(a, b)
        module.zero_grad()
        plan.training_step(batch, 0).backward()  # the next member's gradients from the ensemble's step again
