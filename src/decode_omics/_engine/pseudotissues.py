"""The one pseudo-tissue generator: bulk profiles mixed in silico from a labelled single-cell reference.

:func:`decode_omics.pp.simulate_pseudobulk` and the model's training data
(:class:`decode_omics.model._pseudotissues.PseudoTissueSampler`) both draw through :class:`PseudoTissueGenerator`;
each keeps its own defaults (the public function: uniform fractions of real cells; the model: Dirichlet fractions,
parametric draws). Every draw is vectorised over the samples and takes a :class:`numpy.random.Generator`.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from .mixing import LabelIndex, artificial_cells, label_moments, mix, parametric_mix

#: How pseudo-tissues are made from the labels' cells.
METHODS = ("parametric", "cells")

#: The centring complement's magnitude per sample is the labels' mean norm times a factor drawn log-uniformly from
#: ``[1 / r, r]``: the centring fixes the missing cells' direction, not how much each holds, which depends on how many
#: cells the reference lacks and on the bulk's platform (chosen on the robustness suite's four RAW-left-out
#: proteomics tasks, the method page).
COMPLEMENT_MAGNITUDE_RANGE = 3.0


class PseudoTissueGenerator:
    """Draws the parts of pseudo-tissues from a linear-scale reference.

    Parameters
    ----------
    X
        Reference matrix (cells x features), linear scale, dense or CSR; or an object with ``read(rows)`` and
        ``shape`` (:class:`~decode_omics.model._reference.OnDiskRows`) for a reference that stays on disk.
    codes
        Integer label per cell (``-1``: left out).
    n_labels
        Number of labels.
    moments
        Per-label mean and variance (labels x features) if already known; computed when first needed otherwise.
    """

    def __init__(self, X, codes: np.ndarray, n_labels: int, moments: tuple[np.ndarray, np.ndarray] | None = None):
        self.X = X
        self.n_labels = n_labels
        self.index = LabelIndex.from_codes(codes, n_labels)
        self.on_disk = hasattr(X, "read")
        if moments is not None:
            self.__dict__["moments"] = moments

    @cached_property
    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-label mean and variance of every feature (labels x features, float32)."""
        return label_moments(self.X, self.index)

    @property
    def mean(self) -> np.ndarray:
        """Mean per-cell profile of every label."""
        return self.moments[0]

    @property
    def var(self) -> np.ndarray:
        """Per-feature variance of every label's cells."""
        return self.moments[1]

    def cells(self, rng: np.random.Generator, per_label: int) -> tuple[object, LabelIndex]:
        """The cells to mix from: the whole in-memory reference, or a fresh random pool read from disk (at most
        ``per_label`` cells per label; ``rng`` is used only then)."""
        if not self.on_disk:
            return self.X, self.index
        index = self.index
        keys = rng.random(index.order.size)
        picked, sizes = [], []
        for k in range(self.n_labels):  # a loop over labels, not samples
            start, size = index.starts[k], index.sizes[k]
            rows = index.order[start : start + size]
            take = min(size, per_label)
            picked.append(rows[np.argpartition(keys[start : start + size], take - 1)[:take]] if take < size else rows)
            sizes.append(take)
        pool = self.X.read(np.concatenate(picked))
        codes = np.repeat(np.arange(self.n_labels), sizes)
        return pool, LabelIndex.from_codes(codes, self.n_labels)

    def known(self, rng: np.random.Generator, counts: np.ndarray, method: str, cells=None) -> np.ndarray:
        """Profiles of ``counts[i, k]`` cells of every label ``k`` per sample ``i``: sums of random real cells
        (``"cells"``, from ``cells`` or the whole reference) or per-label normal draws with the labels' means and
        variances (``"parametric"``: nothing to memorise)."""
        if method == "parametric":
            return parametric_mix(rng, counts, self.mean, self.var)
        X, index = (self.X, self.index) if cells is None else cells
        sample_of_draw, rows = index.sample_cells(rng, counts)
        return mix(sample_of_draw, rows, counts.shape[0], X)

    def noise_cells(self, rng: np.random.Generator, n: int, cells=None) -> np.ndarray:
        """``n`` of DECODE's artificial noise cells (per-feature convex mixes of random cells of every label, see
        :func:`~decode_omics._engine.mixing.artificial_cells`) from ``cells`` or the whole reference."""
        X, index = (self.X, self.index) if cells is None else cells
        return artificial_cells(rng, X, index, n)

    @staticmethod
    def add_rows(rng: np.random.Generator, n_per_sample: np.ndarray, rows) -> np.ndarray:
        """Sums of ``n_per_sample[i]`` random rows of ``rows`` (with replacement) for every sample ``i``."""
        one = LabelIndex.from_codes(np.zeros(rows.shape[0], dtype=np.int64), 1)
        sample_of_draw, picked = one.sample_cells(rng, np.asarray(n_per_sample)[:, None])
        return mix(sample_of_draw, picked, len(n_per_sample), rows)

    def unknown_type(
        self, rng: np.random.Generator, n_cells: np.ndarray, expectation: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Material of cell types absent from the reference, one new type per sample.

        Cell types share most of their programme and differ in markers. A new type is a random convex mix of the
        known labels' mean profiles in which a random 2-30 % of the features form its own marker programme (scaled by
        ``exp(s * eps)``, ``s ~ U(1, 3)``) and the rest vary mildly (``exp(0.3 * eps)``), rescaled to the mix's total.
        ``n_cells[i]`` cells of it are drawn with the labels' variance pattern. With ``expectation``, their expected
        profile (``n_cells[i]`` times the new type's mean) is returned too.
        """
        n, f32 = n_cells.size, np.float32  # float32 throughout: drawn for every pseudo-tissue of every epoch
        w = rng.dirichlet(np.ones(self.n_labels), n).astype(f32)
        mu = w @ self.mean.astype(f32)
        var = w @ self.var.astype(f32)
        markers = rng.random(mu.shape, dtype=f32) < rng.uniform(0.02, 0.3, (n, 1)).astype(f32)
        spread = np.where(markers, rng.uniform(1.0, 3.0, (n, 1)).astype(f32), f32(0.3))
        new = mu * np.exp(spread * rng.standard_normal(mu.shape, dtype=f32))
        new *= mu.sum(axis=1, keepdims=True) / np.maximum(new.sum(axis=1, keepdims=True), 1e-12)
        sd = np.sqrt(var) * new / np.maximum(mu, 1e-12)
        c = n_cells[:, None].astype(f32)
        x = c * new + np.sqrt(c) * sd * rng.standard_normal(mu.shape, dtype=f32)
        x = np.clip(x, 0, None, out=x)
        return (x, c * new) if expectation else x

    def centring_complement(self, rng: np.random.Generator, n_cells: np.ndarray) -> np.ndarray:
        """Material of the cells a reference *centred over more cells than it holds* lacks (values read as stored).

        Log-ratios and z-scores are centred per feature over the cells they were measured with: the labels' cell-
        weighted profiles plus those of the cells not kept sum to 0, so the missing cells' mean profile points along
        *minus* the reference's cell-weighted mean profile. The complement's profile is that direction, scaled to the
        labels' mean norm, each feature varied mildly (``0.3 |mu| eps``); ``n_cells[i]`` cells of it are drawn per
        sample with the labels' cell-weighted variance, and each sample's material is then multiplied by a factor
        drawn log-uniformly from ``[1 / r, r]``, ``r`` = :data:`COMPLEMENT_MAGNITUDE_RANGE`: the centring says where
        the missing cells point, not how far (their mean is minus the reference's times the ratio of kept to missing
        cells, which is unknown, and another platform rescales it). Signed values: nothing is clipped.
        """
        f32 = np.float32
        shares = (self.index.sizes / max(int(self.index.sizes.sum()), 1)).astype(f32)
        mean, var = self.mean.astype(f32), self.var.astype(f32)
        mu = -(shares @ mean)
        mu *= np.linalg.norm(mean, axis=1).mean() / max(float(np.linalg.norm(mu)), 1e-12)
        mu = mu + f32(0.3) * np.abs(mu) * rng.standard_normal((n_cells.size, mu.size), dtype=f32)
        sd = np.sqrt(shares @ var)[None, :]
        c = n_cells[:, None].astype(f32)
        x = c * mu + np.sqrt(c) * sd * rng.standard_normal(mu.shape, dtype=f32)
        log_range = np.log(COMPLEMENT_MAGNITUDE_RANGE)
        return x * np.exp(rng.uniform(-log_range, log_range, (n_cells.size, 1))).astype(f32)
