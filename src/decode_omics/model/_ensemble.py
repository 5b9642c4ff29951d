"""Several DECODE networks trained together: their average is the estimate, their disagreement part of its error.

One network's fractions of a real bulk sample move with the seed (different initial weights, pseudo-tissues and input
scaling learn different functions away from the pseudo-tissues they were trained on). :class:`DECODEEnsemble` holds
``n_members`` :class:`~decode_omics.model.DECODEModule` networks, trained in one process, that share nothing random:
each has its own initial weights, its own input transform (scaling fitted on its own sample of pseudo-tissues) and
its own pseudo-tissues, drawn apart from the others' with artificial noise cells of its own (every training step
holds one batch per member, see :class:`~decode_omics.model._pseudotissues.TrainingBatches` and
:class:`~decode_omics.model.DECODETrainingPlan`). Members that share a source of randomness share its error, which
averaging cannot remove (measured on the uncertainty page: members that shared their batches and input transform
left 0.56-0.67 of one network's seed-to-seed spread of the fractions over 6 seeds on three tasks; members whose own
pseudo-tissues were rows of one draw, sharing its noise cells, 0.36-0.72 on 16 tasks, where up to 0.28 of a member's
variance was shared; members that draw their own 0.34-0.73, median 0.52, on the same 16 tasks over 3 seeds,
and 0.30-0.71, median 0.50, of their own spread read alone, against 0.5 for four independent members).
Predictions average the members; :meth:`DECODEEnsemble.member_fractions` gives each member's, from which
:mod:`~decode_omics.model._intervals` builds calibrated intervals. In relative mode the unexplained share
(:meth:`~decode_omics.model.DECODE.get_unexplained`) is the first member's alone: its unknown head reads detached
codes and shapes no fraction, so the other members skip it and the view with unknown material it learns from.
"""

from __future__ import annotations

import torch
from torch import nn

from ._module import DECODEModule, InputTransform, from_file_layout, to_file_layout


class DECODEEnsemble(nn.Module):
    """``n_members`` :class:`~decode_omics.model.DECODEModule` networks, each with its own input transform.

    Parameters
    ----------
    n_members
        Number of networks (at least 2; one network is a plain :class:`~decode_omics.model.DECODEModule`).
    n_features, n_labels, **kwargs
        As for :class:`~decode_omics.model.DECODEModule`.
    unknown_head_members
        Relative mode with ``unknown_head``: how many members (the first ones) learn the unknown share. The share
        only reports how much of a sample the reference explains (its head reads detached codes and shapes no
        fraction), so the package gives it to the first member alone (1): the other members then skip the view with
        unknown material and the head's residual statistics, about a third of a relative-mode network's training time.
        ``None``: every member (models saved before 2026-12-06). Absolute mode: every member, whatever this says (the
        unknown share is part of the estimate there).
    """

    def __init__(self, n_members: int, n_features: int, n_labels: int, *, unknown_head_members=None, **kwargs):
        super().__init__()
        if n_members < 2:
            raise ValueError(f"An ensemble needs at least 2 members, got {n_members}.")
        with_head = n_members if unknown_head_members is None else int(unknown_head_members)
        if not 1 <= with_head <= n_members:
            raise ValueError(f"unknown_head_members must be between 1 and n_members ({n_members}), got {with_head}.")
        unknown_head = kwargs.pop("unknown_head", False)
        # built one after the other from one seed: the first member starts as a single network of that seed does
        self.members = nn.ModuleList(
            DECODEModule(n_features, n_labels, unknown_head=unknown_head and i < with_head, **kwargs)
            for i in range(n_members)
        )
        self.absolute = self.members[0].absolute

    @property
    def transform(self) -> InputTransform:
        """The first member's input transform (its normalisation and feature mask are every member's; its scaling is
        the first member's own)."""
        return self.members[0].transform

    @property
    def label_profiles(self) -> torch.Tensor:
        """Mean per-cell profile of every label (labels x features, linear scale)."""
        return self.members[0].label_profiles

    @property
    def head(self):
        """The first member's head (its structure is every member's)."""
        return self.members[0].head

    def encode(self, x: torch.Tensor, input_noise: float = 0.0) -> torch.Tensor:
        """The first member's code (the latent space of :meth:`DECODE.get_latent_representation`)."""
        return self.members[0].encode(x, input_noise)

    def member_fractions(self, x: torch.Tensor, denoise: bool = True) -> torch.Tensor:
        """Every member's fractions, ``n_members x n x K`` (``K + 1`` in absolute mode)."""
        return torch.stack([m(x, denoise=denoise) for m in self.members])

    def unexplained(self, x: torch.Tensor, denoise: bool = True) -> torch.Tensor:
        """The unknown share (see :meth:`DECODEModule.unexplained`), averaged over the members that have an unknown
        head (in relative mode the first member alone, see ``unknown_head_members``)."""
        readers = [m for m in self.members if m.head.unknown is not None]
        if not readers:
            raise ValueError("This network has no unknown head.")
        return torch.stack([m.unexplained(x, denoise=denoise) for m in readers]).mean(dim=0)

    def forward(self, x: torch.Tensor, denoise: bool = True) -> torch.Tensor:
        """The members' average fractions (rows still sum to 1)."""
        return self.member_fractions(x, denoise).mean(dim=0)


def build_network(n_features: int, n_labels: int, *, n_members: int = 1, **kwargs) -> DECODEModule | DECODEEnsemble:
    """One :class:`~decode_omics.model.DECODEModule`, or a :class:`DECODEEnsemble` of ``n_members``."""
    if n_members == 1:
        return DECODEModule(n_features, n_labels, **kwargs)
    return DECODEEnsemble(n_members, n_features, n_labels, **kwargs)


def members(module: nn.Module) -> list[DECODEModule]:
    """The networks of a module: its members, or the module itself."""
    return list(module.members) if isinstance(module, DECODEEnsemble) else [module]


def unknown_view_members(module: nn.Module, fractions_with_unknown: bool) -> list[int]:
    """The networks of a module (by position) that learn from the view with unknown material, where it is drawn:
    those with an unknown head, or every one when the fractions learn from it too."""
    return [i for i, m in enumerate(members(module)) if fractions_with_unknown or m.head.unknown is not None]


def set_feature_mask(module: nn.Module, keep) -> None:
    """Give every network of a module the feature mask ``keep`` (1: read, 0: ignored; all ones reads every feature)."""
    for member in members(module):
        member.transform.mask.copy_(torch.as_tensor(keep, dtype=member.transform.mask.dtype))


def member_fractions(module: nn.Module, x: torch.Tensor, denoise: bool = True) -> torch.Tensor:
    """Every network's fractions, ``n_members x n x K`` (``1 x n x K`` for one network)."""
    if isinstance(module, DECODEEnsemble):
        return module.member_fractions(x, denoise)
    return module(x, denoise=denoise).unsqueeze(0)


def ensemble_file_layout(state: dict, n_members: int) -> dict:
    """A state dict under the keys model files use: a single network's as always (see
    :func:`~decode_omics.model._module.to_file_layout`), an ensemble's as ``member<i>.<that key>``."""
    if n_members == 1:
        return to_file_layout(state)
    out = {}
    for i in range(n_members):
        prefix = f"members.{i}."
        part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        out |= {f"member{i}.{k}": v for k, v in to_file_layout(part).items()}
    return out


def ensemble_from_file_layout(state: dict, n_members: int) -> dict:
    """The inverse of :func:`ensemble_file_layout`."""
    if n_members == 1:
        return from_file_layout(state)
    out = {}
    for i in range(n_members):
        prefix = f"member{i}."
        part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        out |= {f"members.{i}.{k}": v for k, v in from_file_layout(part).items()}
    return out
