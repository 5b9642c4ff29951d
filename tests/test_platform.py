"""Platform gains: per-feature measurement efficiencies of the bulk's platform, fitted after training."""

import numpy as np
import pandas as pd
import pytest
import scvi
from conftest import fingerprint, reference_and_bulk

import decode_omics as dco
from decode_omics.model import DECODE
from decode_omics.model._calibration import MIN_GAIN_SAMPLES as MIN_SAMPLES
from decode_omics.model._calibration import feature_log_gains
from decode_omics.model._intervals import CONTENT_SHIFT

FAST = {"max_epochs": 25, "n_pseudotissues": 1024, "enable_progress_bar": False, "early_stopping": False}


def _mixtures(rng, n_samples=120, n_labels=4, n_features=300, log_gain_sd=0.0):
    means = rng.gamma(2.0, 1.0, size=(n_labels, n_features))
    for k in range(n_labels):
        means[k, k * 30 : (k + 1) * 30] *= 10
    variances = means * 2.0
    fractions = rng.dirichlet(np.ones(n_labels), n_samples)
    log_gains = rng.normal(0, log_gain_sd, n_features)
    bulk = (fractions @ means) * np.exp(log_gains) * rng.lognormal(0, 0.05, (n_samples, n_features))
    return bulk, fractions, means, variances, log_gains


def test_gains_recover_a_planted_platform():
    bulk, fractions, means, variances, truth = _mixtures(np.random.default_rng(0), log_gain_sd=0.5)
    gains = feature_log_gains(bulk, fractions, means, variances, np.full(4, 200))
    assert np.corrcoef(gains, truth)[0, 1] > 0.99
    # centred on the median feature: equal to the truth up to one common factor
    assert np.abs((gains - truth) - np.median(gains - truth)).max() < 0.1


def test_gains_stay_near_one_on_the_reference_platform():
    """Without a platform, what is left of the raw gains is sampling noise, and the shrinkage removes most of it."""
    bulk, fractions, means, variances, _ = _mixtures(np.random.default_rng(1))
    gains = feature_log_gains(bulk, fractions, means, variances, np.full(4, 200))
    assert np.abs(gains).max() < 0.02


def test_gains_need_enough_samples_and_skip_unmeasured_features():
    bulk, fractions, means, variances, _ = _mixtures(np.random.default_rng(2), log_gain_sd=0.5)
    with pytest.raises(ValueError, match=f"at least {MIN_SAMPLES} bulk samples"):
        feature_log_gains(bulk[:3], fractions[:3], means, variances, np.full(4, 200))
    bulk[:, 5] = 0.0  # a feature the bulk platform does not measure
    gains = feature_log_gains(bulk, fractions, means, variances, np.full(4, 200))
    assert gains[5] == 0.0 and np.isfinite(gains).all()


def _fit(ref, bulk, seed=0, **train):
    scvi.settings.seed = seed
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk)
    model.train(**(FAST | train))
    return model


def test_platform_correction_undoes_a_platform_shift(tmp_path):
    """Bulk measured on another platform (log-normal per-feature gains, sd 0.7): the fitted gains follow the planted
    ones, and dividing them out raises accuracy; saving and loading keeps them."""
    ref, bulk = reference_and_bulk(3, n_samples=60)
    truth = bulk.obsm["fractions"]
    planted = np.random.default_rng(3).normal(0, 0.7, bulk.n_vars)
    bulk.X = np.asarray(bulk.X) * np.exp(planted)
    untouched = fingerprint(bulk)
    model = _fit(ref, bulk)
    gains = model.platform_gains_
    assert gains.index.tolist() == model.features and gains.name == "platform_gain"
    assert np.corrcoef(np.log(gains), planted[bulk.var_names.get_indexer(gains.index)])[0, 1] > 0.9
    corrected = model.get_fractions()
    raw = model.get_fractions(platform_correction=False)
    # 0.812 against 0.774 measured with weight averaging (0.826 against 0.766 with the last weights)
    assert dco.metrics.ccc(corrected, truth) > dco.metrics.ccc(raw, truth) + 0.03
    assert fingerprint(bulk) == untouched
    assert model.train_settings_["platform_correction"] is True
    model.save(tmp_path / "model")
    loaded = DECODE.load(tmp_path / "model", bulk=bulk)
    np.testing.assert_allclose(loaded.platform_gains_.to_numpy(), gains.to_numpy())
    np.testing.assert_allclose(loaded.get_fractions().to_numpy(), corrected.to_numpy(), atol=1e-6)
    # switched off: no gains fitted, and the fractions are those of the bulk as measured
    off = _fit(ref, bulk, platform_correction=False)
    assert off.platform_gains_ is None
    np.testing.assert_allclose(off.get_fractions().to_numpy(), raw.to_numpy(), atol=1e-6)


def test_no_gains_without_enough_linear_bulk():
    ref, bulk = reference_and_bulk(4, n_samples=MIN_SAMPLES - 1)
    assert _fit(ref, bulk, max_epochs=2).platform_gains_ is None
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type")
    model = DECODE(ref)
    model.train(**(FAST | {"max_epochs": 2}))
    assert model.platform_gains_ is None


def test_absolute_mode_reads_known_labels_through_the_gains_and_unknown_as_measured():
    """Absolute mode fits the gains too. The known labels' split is read through them, as in relative mode; the
    ``unknown`` share from the bulk as measured, since the gains take up part of what the reference lacks."""
    ref, bulk = reference_and_bulk(5, n_samples=60)
    truth = bulk.obsm["fractions"]
    bulk.X = np.asarray(bulk.X) * np.exp(np.random.default_rng(5).normal(0, 0.7, bulk.n_vars))
    ref = ref[ref.obs["cell_type"] != "type3"].copy()  # material the reference lacks
    known = ["type0", "type1", "type2"]
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk, mode="absolute")
    model.train(**FAST)
    assert model.platform_gains_ is not None and model.train_settings_["platform_correction"] is True
    fractions = model.get_fractions()
    measured = model.get_fractions(platform_correction=False)
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(fractions["unknown"], measured["unknown"], atol=1e-6)

    def split(f):
        return f[known].div(f[known].sum(axis=1), axis=0)

    target = truth[known].div(truth[known].sum(axis=1), axis=0)
    through, as_measured = dco.metrics.ccc(split(fractions), target), dco.metrics.ccc(split(measured), target)
    assert through > as_measured + 0.01, (through, as_measured)  # measured: 0.922 against 0.900
    central, lower, upper = model.get_fractions(return_interval=True)
    np.testing.assert_allclose(central.to_numpy(), fractions.to_numpy(), atol=1e-6)
    assert ((lower <= central + 1e-9) & (central <= upper + 1e-9)).all().all()
    blocks = pd.concat(model.iter_fractions(block_rows=25))
    np.testing.assert_allclose(blocks.to_numpy(), fractions.to_numpy(), atol=1e-6)


def _label_read_low(seed=5):
    """Bulk whose platform under-measures the features most specific to one label (x0.25) on top of a per-feature
    platform (sd 0.3): that label reads low."""
    ref, bulk = reference_and_bulk(seed, n_samples=60)
    means = pd.DataFrame(np.asarray(ref.X), columns=ref.var_names).groupby(ref.obs["cell_type"].to_numpy()).mean()
    share = means / means.sum(axis=0)
    label = means.index[0]
    specific = share.columns[(share.loc[label] > 0.5).to_numpy()]
    rng = np.random.default_rng(seed)
    gains = pd.Series(np.exp(rng.normal(0, 0.3, bulk.n_vars)), index=bulk.var_names)
    gains[specific] *= 0.25
    bulk.X = np.asarray(bulk.X) * gains.to_numpy()
    return ref, bulk, label, len(specific)


def test_gains_anchored_on_measured_fractions_bring_a_label_read_low_back():
    """Gains fitted from the estimates keep a label the platform under-measures low; anchored on 8 samples' measured
    fractions, the other 52 samples. mean for it comes within half the gap, and their CCC rises."""
    ref, bulk, label, n_specific = _label_read_low()
    assert n_specific >= 10
    truth = bulk.obsm["fractions"]
    model = _fit(ref, bulk)
    default = model.get_fractions()
    measured = truth.iloc[:8].copy()
    untouched = measured.copy()
    gains = model.fit_platform_gains(measured)
    assert model.platform_gains_ is gains and gains.index.tolist() == model.features
    assert model.train_settings_["platform_gains_from"] == "measured fractions of 8 samples"
    pd.testing.assert_frame_equal(measured, untouched)  # inputs are not modified
    # intervals calibrated again, allowing each label only the bias the 8 measured samples leave open
    calibration = model.interval_calibration_
    assert calibration["content_shift_before_anchoring"] == CONTENT_SHIFT
    assert 0 < calibration["content_shift"] < CONTENT_SHIFT
    anchored = model.get_fractions()
    rest = truth.index[8:]
    gap_default = default.loc[rest, label].mean() - truth.loc[rest, label].mean()
    gap_anchored = anchored.loc[rest, label].mean() - truth.loc[rest, label].mean()
    assert gap_default < -0.03  # read low with the estimates' gains
    assert abs(gap_anchored) < abs(gap_default) / 2  # -0.128 -> -0.033 measured
    assert dco.metrics.ccc(anchored.loc[rest], truth.loc[rest]) > dco.metrics.ccc(default.loc[rest], truth.loc[rest])
    # refitting from the estimates restores the gains train() fitted, and the content shift
    model.fit_platform_gains()
    pd.testing.assert_frame_equal(model.get_fractions(), default)
    assert model.interval_calibration_["content_shift"] == CONTENT_SHIFT


def test_gains_anchored_in_absolute_mode_keep_the_known_split_where_the_reference_lacks_a_type():
    """A bulk holding a type the reference lacks, on a platform that under-measures one known label's features:
    anchored on 8 samples' known-label fractions (an ``unknown`` column as get_fractions writes it is allowed and
    not used), the other samples' known split moves towards the truth; the ``unknown`` share stays as measured."""
    ref, bulk, label, _ = _label_read_low(seed=7)
    truth = bulk.obsm["fractions"]
    missing = truth.columns[-1]
    assert missing != label
    ref = ref[ref.obs["cell_type"] != missing].copy()
    known = [c for c in truth.columns if c != missing]
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk, mode="absolute")
    model.train(**FAST)
    default = model.get_fractions()

    def split(f):
        return f[known].div(f[known].sum(axis=1), axis=0)

    target = split(truth)
    measured = target.iloc[:8].assign(unknown=truth[missing].iloc[:8])
    assert model.interval_calibration_["unknown_content_shift"] == CONTENT_SHIFT
    model.calibrate_intervals(content_shift=1.0)  # a wide prior, which the measured samples narrow
    model.fit_platform_gains(measured)
    anchored = model.get_fractions()
    np.testing.assert_allclose(anchored["unknown"], default["unknown"], atol=1e-6)
    # the measured known split narrows the known labels' content shift, not the unknown material's
    calibration = model.interval_calibration_
    assert calibration["content_shift"] < 1.0 == calibration["unknown_content_shift"], calibration["content_shift"]
    rest = truth.index[8:]
    gap = {name: split(f).loc[rest, label].mean() - target.loc[rest, label].mean()
           for name, f in (("default", default), ("anchored", anchored))}  # fmt: skip
    assert gap["default"] < -0.03 and abs(gap["anchored"]) < abs(gap["default"]) / 2, gap  # -0.153 -> 0.000
    ccc = {name: dco.metrics.ccc(split(f).loc[rest], target.loc[rest]) for name, f in (("d", default), ("a", anchored))}
    assert ccc["a"] > ccc["d"], ccc  # 0.858 -> 0.993 measured
    with pytest.raises(ValueError, match="unknown columns \\['unknown'\\]"):  # relative mode has no unknown share
        _fit(ref, bulk, max_epochs=2).fit_platform_gains(measured)


def test_gains_anchored_on_the_cohort_mean_bring_a_label_read_low_back():
    """Gains fitted from the estimates keep a label the platform under-measures low; anchored on the cohort's mean
    composition alone (one number per label), that label's mean comes within half the gap, every sample keeps its
    deviation as read, and the CCC rises; a mean that is not the cohort's moves the estimates towards it."""
    ref, bulk, label, _ = _label_read_low()
    truth = bulk.obsm["fractions"]
    model = _fit(ref, bulk)
    default = model.get_fractions()
    mean = truth.mean()
    untouched = mean.copy()
    gains = model.fit_platform_gains(mean_fractions=mean)
    pd.testing.assert_series_equal(mean, untouched)  # inputs are not modified
    assert model.platform_gains_ is gains
    assert model.train_settings_["platform_gains_from"] == "the cohort's mean fractions"
    assert model.interval_calibration_["content_shift"] == CONTENT_SHIFT  # the intervals keep their content shift
    anchored = model.get_fractions()
    gap_default = default[label].mean() - mean[label]
    gap_anchored = anchored[label].mean() - mean[label]
    assert gap_default < -0.03  # read low with the estimates' gains
    assert abs(gap_anchored) < abs(gap_default) / 2, (gap_default, gap_anchored)  # -0.128 -> -0.015 measured
    assert dco.metrics.ccc(anchored, truth) > dco.metrics.ccc(default, truth)  # 0.871 -> 0.995 measured
    # a mapping works as well, and a label set high pulls that label's estimates up
    high = mean.to_dict() | {label: mean[label] + 0.2}
    model.fit_platform_gains(mean_fractions=high)
    assert model.get_fractions()[label].mean() > anchored[label].mean() + 0.05


def test_mean_fractions_are_checked():
    ref, bulk = reference_and_bulk(6, n_samples=20)
    truth = bulk.obsm["fractions"]
    model = _fit(ref, bulk, max_epochs=2)
    mean = truth.mean()
    with pytest.raises(ValueError, match="one value per label.*missing"):
        model.fit_platform_gains(mean_fractions=mean.iloc[1:])
    with pytest.raises(ValueError, match="unknown names \\['extra'\\]"):
        model.fit_platform_gains(mean_fractions=mean.to_dict() | {"extra": 0.1})
    with pytest.raises(ValueError, match="NaN, infinite or negative"):
        model.fit_platform_gains(mean_fractions=mean.to_dict() | {truth.columns[0]: -0.1})
    with pytest.raises(ValueError, match="sums to 0"):
        model.fit_platform_gains(mean_fractions=mean * 0)
    with pytest.raises(ValueError, match="must hold numbers"):
        model.fit_platform_gains(mean_fractions=mean.to_dict() | {truth.columns[0]: "high"})
    with pytest.raises(ValueError, match="use measured_fractions"):
        model.fit_platform_gains(mean_fractions=truth)
    with pytest.raises(ValueError, match="not both"):
        model.fit_platform_gains(truth.iloc[:6], mean_fractions=mean)


def test_measured_fractions_are_checked(tmp_path):
    ref, bulk = reference_and_bulk(6, n_samples=20)
    truth = bulk.obsm["fractions"]
    model = _fit(ref, bulk, max_epochs=2)
    with pytest.raises(ValueError, match="one column per label.*missing"):
        model.fit_platform_gains(truth.iloc[:, 1:])
    with pytest.raises(ValueError, match="unknown columns \\['extra'\\]"):
        model.fit_platform_gains(truth.assign(extra=0.0))
    with pytest.raises(ValueError, match="not in the registered bulk"):
        model.fit_platform_gains(truth.rename(index=lambda s: s + "_x"))
    with pytest.raises(ValueError, match="NaN or negative"):
        model.fit_platform_gains(truth.iloc[:6].assign(**{truth.columns[0]: -0.1}))
    with pytest.raises(ValueError, match=f"at least {MIN_SAMPLES} measured samples"):
        unmeasured = truth.copy()
        unmeasured.iloc[3:] = np.nan  # rows of NaN: samples not measured
        model.fit_platform_gains(unmeasured)
    with pytest.raises(ValueError, match="DataFrame"):
        model.fit_platform_gains(truth.to_numpy())
    with pytest.raises(ValueError, match="must hold numbers"):
        model.fit_platform_gains(truth.iloc[:6].assign(**{truth.columns[0]: "high"}))
    model.fit_platform_gains(truth.iloc[:6])
    model.save(tmp_path / "model")
    loaded = DECODE.load(tmp_path / "model", bulk=bulk)
    np.testing.assert_allclose(loaded.platform_gains_.to_numpy(), model.platform_gains_.to_numpy())
    assert loaded.train_settings_["platform_gains_from"] == "measured fractions of 6 samples"


def test_deconvolve_anchors_the_gains_on_measured_fractions_in_obsm():
    """tl.deconvolve(measured_key=...): fractions measured on some samples (NaN rows for the rest) anchor the gains;
    the key is checked before training, and the bulk keeps what it had."""
    ref, bulk, label, _ = _label_read_low()
    truth = bulk.obsm["fractions"]
    measured = truth.copy()
    measured.iloc[8:] = np.nan
    bulk.obsm["flow"] = measured
    untouched = fingerprint(bulk)
    fast = {k: v for k, v in FAST.items() if k != "enable_progress_bar"}
    with pytest.raises(KeyError, match="measured_key 'facs' is not in the bulk's .obsm"):
        dco.tl.deconvolve(bulk, ref, "cell_type", measured_key="facs", copy=True, train_kwargs=fast)
    out = dco.tl.deconvolve(bulk, ref, "cell_type", measured_key="flow", copy=True, train_kwargs=fast)
    assert fingerprint(bulk) == untouched
    params = out.uns["decode"]["params"]
    assert params["measured_key"] == "flow" and params["platform_gains_from"] == "measured fractions of 8 samples"
    rest = truth.index[8:]
    # the same bulk read with the estimates' gains is 0.128 low on this label (the test above)
    assert abs(out.obsm["decode"].loc[rest, label].mean() - truth.loc[rest, label].mean()) < 0.064


def test_deconvolve_anchors_the_gains_on_the_cohort_mean():
    """tl.deconvolve(mean_fractions=...): the cohort's average composition anchors the gains; it is checked before
    training, recorded in the parameters, and not given together with measured_key."""
    ref, bulk, label, _ = _label_read_low()
    truth = bulk.obsm["fractions"]
    mean = truth.mean().to_dict()
    fast = {k: v for k, v in FAST.items() if k != "enable_progress_bar"}
    with pytest.raises(ValueError, match="not both"):
        dco.tl.deconvolve(bulk, ref, "cell_type", measured_key="flow", mean_fractions=mean, copy=True)
    with pytest.raises(ValueError, match="missing"):
        dco.tl.deconvolve(bulk, ref, "cell_type", mean_fractions={label: 1.0}, copy=True, train_kwargs=fast)
    out = dco.tl.deconvolve(bulk, ref, "cell_type", mean_fractions=mean, copy=True, train_kwargs=fast)
    params = out.uns["decode"]["params"]
    assert params["platform_gains_from"] == "the cohort's mean fractions"
    assert params["mean_fractions"] == pytest.approx(mean)
    # the same bulk read with the estimates' gains is 0.128 low on this label (the tests above)
    assert abs(out.obsm["decode"][label].mean() - mean[label]) < 0.064
