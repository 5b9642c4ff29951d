"""DECODE's training data: fresh pseudo-tissues from the reference every epoch (with the noisy views of the
contrastive denoiser and, in absolute mode, a view with unknown material), paired with batches of the real bulk.

The pseudo-tissues themselves come from the one generator,
:class:`~decode_omics._engine.pseudotissues.PseudoTissueGenerator`, which :func:`~decode_omics.pp.simulate_pseudobulk`
uses too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .._engine.mixing import draw_fractions, round_counts
from .._engine.pseudotissues import PseudoTissueGenerator


@dataclass
class PseudoTissueConfig:
    """How pseudo-tissues are drawn.

    Attributes
    ----------
    cells_per_sample
        Cells per pseudo-tissue.
    method
        ``"parametric"`` (per-label normal draws with the labels' means and variances: nothing to memorise) or
        ``"cells"`` (sums of real reference cells).
    fractions
        Fraction prior (see :func:`~decode_omics.pp.simulate_pseudobulk`).
    noise_share
        Upper bound of the share of artificial noise cells in the two noisy views of the denoiser (DECODE's
        ``floor(0.1 * n)`` cells).
    unknown_share
        Upper bound of the share of unknown material in the view with it (the unknown head learns from that view;
        with ``fractions_with_unknown`` or the centring complement, the fractions too).
    unknown_material
        What that view adds: ``"new_type"`` (cells of a random new cell type, linear scales) or ``"complement"``
        (values read as stored: cells of the material a reference centred over more cells than it holds lacks, see
        :meth:`~decode_omics._engine.pseudotissues.PseudoTissueGenerator.centring_complement`).
    pool_per_label
        On-disk references only: cells per label read from disk for each set of pseudo-tissues (a fresh random pool
        every epoch, so every cell is used over training while memory stays bounded).
    """

    cells_per_sample: int = 30
    method: str = "parametric"
    fractions: str = "dirichlet"
    noise_share: float = 0.1
    unknown_share: float = 0.5
    unknown_material: str = "new_type"
    pool_per_label: int = 2048


class PseudoTissueSampler:
    """Draws pseudo-tissues (clean and two noisy views) from a linear-scale reference, vectorised.

    Parameters
    ----------
    X
        Reference matrix (cells x features), linear scale, dense or CSR; or an
        :class:`~decode_omics.model._reference.OnDiskRows` for a reference that stays on disk.
    codes
        Integer label per cell.
    n_labels
        Number of labels.
    config
        :class:`PseudoTissueConfig`.
    moments
        Per-label mean and variance if already known (on-disk references: computed while streaming).
    """

    def __init__(self, X, codes: np.ndarray, n_labels: int, config: PseudoTissueConfig, moments=None):
        self.generator = PseudoTissueGenerator(X, codes, n_labels, moments)
        self.config = config
        self.n_labels = n_labels
        self.index = self.generator.index
        self.on_disk = self.generator.on_disk
        self.mean, self.var = self.generator.moments

    @classmethod
    def from_reference(cls, ref, *, cells_per_sample: int, method: str, fractions: str) -> PseudoTissueSampler:
        """The sampler of a :class:`~decode_omics.model._reference.PreparedReference`."""
        config = PseudoTissueConfig(cells_per_sample=cells_per_sample, method=method, fractions=fractions)
        return cls(ref.matrix, ref.codes, len(ref.labels), config, moments=ref.moments)

    def pool(self, rng: np.random.Generator):
        """The cells to mix from (see :meth:`PseudoTissueGenerator.cells`): a reference on disk is read as a fresh
        random pool of at most ``pool_per_label`` cells per label (parametric pseudo-tissues need cells only for the
        noise, 512 per label)."""
        per_label = self.config.pool_per_label if self.config.method == "cells" else 512
        return self.generator.cells(rng, per_label)

    def sample(
        self,
        n: int,
        rng: np.random.Generator,
        absolute: bool = False,
        views: bool = True,
        unknown_share: float | None = None,
        depth_rng: np.random.Generator | None = None,
    ) -> dict[str, np.ndarray]:
        """``n`` pseudo-tissues: ``x`` (clean), ``y`` (fractions over known cells) and, if ``views``, ``x1`` / ``x2``
        (noisy views: DECODE's artificial noise cells, 1 to ``floor(noise_share * n)``, added) and, if ``absolute``
        (the view with unknown material: absolute mode, and relative fractions trained to ignore such material),
        ``xu`` (cells of a new, unknown cell type added, or the centring complement, as the config's
        ``unknown_material`` says; a share ``u`` drawn from ``U(0, unknown_share)``, the config's ``unknown_share``
        unless given) and ``u``. With ``depth_rng`` too (and a new type's material), ``xd`` and ``ud``: the same
        pseudo-tissues as deep as bulk (:meth:`at_depth`), their depths and which of them carry the new type drawn
        from ``depth_rng`` alone, so that every other draw is the same with or without them.
        """
        cfg, gen = self.config, self.generator
        cells = self.pool(rng) if (cfg.method == "cells" or views) else None
        f = draw_fractions(rng, n, self.n_labels, cfg.fractions)
        counts = round_counts(f, cfg.cells_per_sample)
        x = gen.known(rng, counts, cfg.method, cells)
        out = {"x": x, "y": (counts / cfg.cells_per_sample).astype(np.float32)}
        if not views:
            return out
        pool = gen.noise_cells(rng, 64, cells)
        max_noise = max(1, int(np.floor(cfg.noise_share * cfg.cells_per_sample)))
        for view in ("1", "2"):
            out["x" + view] = x + gen.add_rows(rng, rng.integers(1, max_noise + 1, n), pool)
        if absolute:
            share = rng.uniform(0, cfg.unknown_share if unknown_share is None else unknown_share, n)
            n_unknown = np.rint(share / (1 - share) * cfg.cells_per_sample).astype(np.int64)
            if cfg.unknown_material == "complement":
                out["xu"] = x + gen.centring_complement(rng, n_unknown)
            else:
                material, expected = gen.unknown_type(rng, n_unknown, expectation=True)
                out["xu"] = x + material
                if depth_rng is not None:
                    known = ((counts @ self.mean), x)
                    out |= self.at_depth(depth_rng, known, (expected, material), n_unknown)
            out["u"] = (n_unknown / (n_unknown + cfg.cells_per_sample)).astype(np.float32)
        return out

    def at_depth(self, rng: np.random.Generator, known: tuple, new: tuple, n_new: np.ndarray) -> dict[str, np.ndarray]:
        """Pseudo-tissues as deep as bulk, for the unknown head: ``xd`` and the share of new material ``ud``.

        A pseudo-tissue of ``cells_per_sample`` cells is far noisier than a bulk sample of thousands or millions of
        cells, and the view with unknown material adds the new type's cells on top, so its sampling noise falls as its
        share rises. Read by those views alone, the unknown head learnt depth as unknown material: on sums of the 10x
        PBMC reference's own cells, nothing missing, it read 0.01-0.02 at 30 cells and 0.65-0.66 at 1,000
        (docs/method.md, *The unknown head and depth*). Here each sample gets a total depth ``D`` of 2 to 300 times
        ``cells_per_sample`` cells (log-uniform), independent of its share; half keep the new type's material
        (``n_new`` cells, their share ``u`` as in the view), half none. Each part's deviation from its expected profile
        is scaled down to the sampling noise of its ``(1 - u) D`` or ``u D`` cells: ``sqrt(cells / its depth)``, a
        convex mix of the drawn profile and its expectation, so nothing turns negative.

        Parameters
        ----------
        rng
            The stream that draws the depths and which samples keep the new material.
        known, new
            ``(expected, drawn)`` profiles of the pseudo-tissues' known cells and of the new type's cells.
        n_new
            Cells of the new type per sample.
        """
        cps = self.config.cells_per_sample
        n = len(n_new)
        n_new = np.where(rng.random(n) < 0.5, n_new, 0)
        u = n_new / (n_new + cps)
        depth = cps * np.exp(rng.uniform(np.log(2.0), np.log(300.0), n))
        f32 = np.float32
        scale_known = np.sqrt(cps / ((1 - u) * depth)).astype(f32)[:, None]
        scale_new = np.sqrt(n_new / np.maximum(u * depth, 1.0)).astype(f32)[:, None]
        (known_mean, known_x), (new_mean, new_x) = known, new
        x = known_mean + (known_x - known_mean) * scale_known
        x = x + np.where(n_new[:, None] > 0, new_mean + (new_x - new_mean) * scale_new, f32(0))
        return {"xd": x.astype(f32), "ud": u.astype(f32)}


def _rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (``0, 1`` outside distributed training)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


#: The keys of the view with unknown material in a batch: only the networks that learn from it have rows there.
UNKNOWN_VIEW_KEYS = ("xu", "u")
#: The keys of the pseudo-tissues as deep as bulk (:meth:`PseudoTissueSampler.at_depth`), laid out as the view
#: with unknown material (the unknown head alone reads them).
DEPTH_VIEW_KEYS = ("xd", "ud")


def _view_members(unknown_view, n_members: int) -> list[int]:
    """The members that draw the view with unknown material: a list of positions, or ``True`` for every member."""
    if unknown_view is True:
        return list(range(n_members))
    return sorted(int(i) for i in (unknown_view or []))


class TrainingBatches:
    """An iterable of training batches for Lightning: fresh pseudo-tissues each epoch plus cycled real-bulk batches.

    Each batch is a dict of float tensors: ``x``, ``x1``, ``x2``, ``y``, with ``unknown_view`` (the view with unknown
    material, see :meth:`PseudoTissueSampler.sample`) ``xu`` and ``u``, and, when bulk is given, ``bulk`` (a random
    batch of real bulk samples, never with labels).

    Under data-parallel training (``strategy="ddp"``) every process draws its own ``1 / n_processes`` share of the
    epoch's pseudo-tissues, in batches of ``batch_size / n_processes``, and its own bulk batches, from a stream
    seeded by ``(seed, epoch, rank)``.

    For an ensemble of ``n_members`` networks, every member's share of the epoch (``n_per_epoch / n_members``) is a
    draw of its own (:meth:`PseudoTissueSampler.sample`, with its own artificial noise cells), and row ``j * n_members
    + i`` of every batch is member ``i``'s: member ``i`` takes rows ``i, i + n_members, ...``. Only the members listed
    in ``unknown_view`` (positions; ``True``: all) draw the view with unknown material; ``xu`` and ``u`` hold their
    rows alone, row ``j * m + p`` being the ``p``-th listed member's (``m`` listed). With ``depth_view``, those
    members also get ``xd`` and ``ud`` (their pseudo-tissues as deep as bulk, for the unknown head:
    :meth:`PseudoTissueSampler.at_depth`), drawn from a stream of their own, ``(seed, epoch, 1)``, so that every
    other draw is the same with or without them.
    """

    def __init__(
        self,
        sampler: PseudoTissueSampler,
        n_per_epoch: int,
        batch_size: int,
        seed: int,
        bulk: np.ndarray | None = None,
        unknown_view: Sequence[int] | bool = (),
        n_members: int = 1,
        depth_view: bool = False,
    ):
        if n_per_epoch % n_members or batch_size % n_members:
            raise ValueError(
                f"n_per_epoch ({n_per_epoch}) and batch_size ({batch_size}) must be multiples of n_members "
                f"({n_members})."
            )
        self.sampler = sampler
        self.n_members = n_members
        self.n_per_epoch = n_per_epoch
        self.batch_size = batch_size
        self.seed = seed
        self.bulk = None if bulk is None else torch.as_tensor(bulk, dtype=torch.float32)
        self.view_members = _view_members(unknown_view, n_members)
        self.depth_view = depth_view and bool(self.view_members)
        self.epoch = 0

    def _n_local(self) -> int:
        """Pseudo-tissues this process draws per epoch and member: an equal share under data-parallel training."""
        _, world = _rank_and_world()
        return int(np.ceil(self.n_per_epoch / self.n_members / world))

    def _local_batch(self) -> int:
        """Batch size per process and member: the global batch (``batch_size / n_members`` per member) split over the
        processes, so one step of ``n`` processes sees as many pseudo-tissues as one step of a single process, and an
        epoch has as many steps."""
        _, world = _rank_and_world()
        return int(np.ceil(self.batch_size / self.n_members / world))

    def __len__(self) -> int:
        return int(np.ceil(self._n_local() / self._local_batch()))

    def __iter__(self):
        rank, world = _rank_and_world()
        n = self._n_local()
        # one stream per (seed, epoch) on one process, per (seed, epoch, rank) under DDP: reproducible for a given
        # number of processes, and no two processes draw the same pseudo-tissues
        rng = np.random.default_rng([self.seed, self.epoch] if world == 1 else [self.seed, self.epoch, rank])
        self.epoch += 1
        # one draw per member (its own pseudo-tissues and noise cells), each in its own random order
        views = self.view_members
        if self.depth_view:  # a stream of its own: every other draw (and what the fractions learn) stays as it was
            depth_rng = np.random.default_rng([self.seed, self.epoch - 1, 1] + ([] if world == 1 else [rank]))
            draws = [
                self.sampler.sample(n, rng, True, depth_rng=depth_rng) if i in views else self.sampler.sample(n, rng)
                for i in range(self.n_members)
            ]
        else:
            draws = [self.sampler.sample(n, rng, i in views) for i in range(self.n_members)]

        def stacked(key, who):
            return torch.stack([torch.as_tensor(draws[i][key]) for i in who], dim=1)

        every = range(self.n_members)
        data = {k: stacked(k, every) for k in draws[0] if k not in UNKNOWN_VIEW_KEYS + DEPTH_VIEW_KEYS}
        view_keys = UNKNOWN_VIEW_KEYS + (DEPTH_VIEW_KEYS if self.depth_view else ())
        with_view = {k: stacked(k, views) for k in view_keys} if views else {}
        order = torch.as_tensor(np.stack([rng.permutation(n) for _ in range(self.n_members)], axis=1))
        members = torch.arange(self.n_members)
        batch_size = self._local_batch()
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            # row j * n_members + i: member i's j-th pseudo-tissue of the batch
            batch = {k: v[idx, members].flatten(0, 1) for k, v in data.items()}
            # row j * m + p: the p-th of the m members that draw the view with unknown material
            batch |= {k: v[idx[:, views], torch.arange(len(views))].flatten(0, 1) for k, v in with_view.items()}
            if self.bulk is not None:
                batch["bulk"] = self.bulk[torch.as_tensor(rng.integers(0, self.bulk.shape[0], idx.numel()))]
            yield batch


class ValidationBatches:
    """A fixed set of held-out pseudo-tissues (never real bulk labels) for early stopping.

    One draw of ``n``; in a batch, member ``i`` of ``n_members`` takes rows ``i, i + n_members, ...``, and ``xu`` /
    ``u`` keep the rows of the members listed in ``unknown_view`` alone (laid out as in :class:`TrainingBatches`)."""

    def __init__(
        self,
        sampler: PseudoTissueSampler,
        n: int,
        batch_size: int,
        seed: int,
        unknown_view: Sequence[int] | bool = (),
        n_members: int = 1,
    ):
        views = _view_members(unknown_view, n_members)
        data = sampler.sample(n, np.random.default_rng([seed, 10**6]), bool(views))
        data = {k: torch.as_tensor(v) for k, v in data.items()}
        self.batches = []
        for s in range(0, n, batch_size):
            batch = {k: v[s : s + batch_size] for k, v in data.items()}
            if views and len(views) < n_members:
                rows = torch.isin(torch.arange(len(batch["x"])) % n_members, torch.as_tensor(views))
                batch |= {k: batch[k][rows] for k in UNKNOWN_VIEW_KEYS}
            self.batches.append(batch)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)
