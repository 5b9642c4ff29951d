"""The DECODE network, one component per stage of the method (see ``docs/architecture.md``).

- :class:`Encoder`: profiles to a bounded latent code (input normalisation, then an MLP);
- :class:`DomainAdversary`: gradient reversal, domain discriminator and the spread guard (adversarial alignment);
- :class:`ContrastiveDenoiser`: the learned signal / noise mask, its projector and the InfoNCE loss;
- :class:`DeconvolutionHead`: relative fractions over the known labels and, in absolute mode, the unknown share.

:class:`DECODEModule` puts them together; the training plan calls one loss method per stage. The pseudo-tissues and
the noisy views the denoiser learns from are drawn on the data side (:mod:`decode_omics.model._pseudotissues`).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn


def _mlp(sizes: list[int], dropout: float = 0.0, last_activation: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers += [nn.LayerNorm(b), nn.LeakyReLU(0.2)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class InputTransform(nn.Module):
    """Profiles to network input: a per-sample normalisation, then per-feature scaling.

    ``normalization="composition"`` (linear scales): unit-sum composition x n_features, which removes the sample's
    total (cells, sequencing depth, loading). ``"standardize_rows"`` (values kept as stored, with negatives): each
    sample centred on its mean and divided by its spread over the features, which removes a sample-wide shift and
    scale. The per-feature centre and scale are buffers fitted on the training pseudo-tissues (saved with the
    weights), so reference, pseudo-tissues and real bulk pass through exactly the same transform. A third buffer,
    ``mask`` (ones unless set), zeroes the features the network must not read (features that do not transfer to the
    bulk's platform, see ``DECODE.feature_agreement_``); they still count in the per-sample normalisation.
    """

    def __init__(self, n_features: int, normalization: str = "composition"):
        super().__init__()
        if normalization not in ("composition", "standardize_rows"):
            raise ValueError(f"normalization must be 'composition' or 'standardize_rows', got {normalization!r}.")
        self.normalization = normalization
        self.register_buffer("center", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.register_buffer("mask", torch.ones(n_features))

    def composition(self, x: torch.Tensor) -> torch.Tensor:
        """The per-sample normalisation (for ``"composition"``: unit-sum composition times the number of features,
        so the mean feature is 1)."""
        if self.normalization == "standardize_rows":
            centred = x - x.mean(dim=1, keepdim=True)
            return centred / centred.std(dim=1, keepdim=True).clamp_min(1e-12)
        total = x.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return x / total * x.shape[1]

    @torch.no_grad()
    def fit(self, x: torch.Tensor, standardize: bool) -> None:
        """Fit the per-feature centre and scale on training profiles (identity if not ``standardize``)."""
        c = self.composition(x)
        if standardize:
            self.center.copy_(c.mean(dim=0))
            self.scale.copy_(c.std(dim=0).clamp_min(1e-3 * c.std(dim=0).mean().clamp_min(1e-8)))
        else:
            self.center.zero_()
            self.scale.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.composition(x) - self.center) / self.scale * self.mask


class Encoder(nn.Module):
    """Stage 1: linear-scale profiles to a latent code, bounded by a LayerNorm (an unbounded code lets the reversed
    gradient of the adversarial stage inflate it).

    Parameters
    ----------
    n_features, n_hidden, n_latent, dropout
        Input features; width of the first layer (the second is half of it); latent dimension; dropout.
    normalization
        Per-sample normalisation of the input (see :class:`InputTransform`).
    """

    def __init__(self, n_features: int, n_hidden: int, n_latent: int, dropout: float, normalization: str):
        super().__init__()
        self.transform = InputTransform(n_features, normalization)
        self.net = nn.Sequential(
            _mlp([n_features, n_hidden, n_hidden // 2], dropout=dropout),
            nn.Linear(n_hidden // 2, n_latent),
            nn.LayerNorm(n_latent),
        )

    def forward(self, x: torch.Tensor, input_noise: float = 0.0) -> torch.Tensor:
        """Latent code of linear-scale profiles; Gaussian input noise of sd ``input_noise`` in training."""
        h = self.transform(x)
        if input_noise > 0 and self.training:
            h = h + input_noise * torch.randn_like(h)
        return self.net(h)


class GradientReversal(torch.autograd.Function):
    """Identity forward; gradient multiplied by ``-weight`` backward (Ganin & Lempitsky, 2015)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.weight * grad, None


class DomainAdversary(nn.Module):
    """Stage 2, adversarial alignment: a discriminator tells pseudo-tissue codes (0) from real-bulk codes (1) through a
    gradient reversal layer, so the encoder learns codes it cannot separate; a spread guard keeps the bulk's codes
    from collapsing to one point."""

    def __init__(self, n_latent: int, n_hidden: int):
        super().__init__()
        self.discriminator = nn.Sequential(_mlp([n_latent, n_hidden // 4]), nn.Linear(n_hidden // 4, 1))

    def logits(self, z: torch.Tensor, weight: float) -> torch.Tensor:
        """Discriminator logits on gradient-reversed codes (1 = real bulk, 0 = pseudo-tissue)."""
        return self.discriminator(GradientReversal.apply(z, weight)).squeeze(-1)

    def loss(
        self, z: torch.Tensor, z_bulk: torch.Tensor, weight: float, *, align: str, spread: bool
    ) -> dict[str, torch.Tensor]:
        """``adversarial_loss`` (the discriminator's cross-entropy; the encoder receives its gradient reversed and
        scaled by ``weight``), ``discriminator_accuracy`` and, if ``spread`` and the bulk batch holds two samples or
        more, ``spread_loss``: a hinge on each latent dimension's standard deviation over the bulk codes, which must
        stay at least at the pseudo-tissue codes' (VICReg's variance term; Bardes et al., 2022). With
        ``align="bulk"`` the pseudo-tissue codes are detached, so only the bulk's codes move."""
        z_src = z.detach() if align == "bulk" else z
        logits = self.logits(torch.cat([z_src, z_bulk]), weight)
        target = torch.cat([torch.zeros(len(z)), torch.ones(len(z_bulk))]).to(logits)
        adversarial = F.binary_cross_entropy_with_logits(logits, target)
        out = {}
        if spread and len(z_bulk) > 1:  # a spread needs two samples (a last batch can hold one)
            floor = z.detach().std(dim=0)
            out["spread_loss"] = F.relu(floor - z_bulk.std(dim=0)).mean()
        out["adversarial_loss"] = adversarial
        out["discriminator_accuracy"] = ((logits > 0).float() == target).float().mean()
        return out


class MaskingDenoiser(nn.Module):
    """Splits a latent code into a signal part ``m * z`` and a noise part ``(1 - m) * z`` with a learned mask."""

    def __init__(self, n_latent: int, n_hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_latent, n_hidden), nn.LeakyReLU(0.2), nn.Linear(n_hidden, n_latent))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.sigmoid(self.net(z))
        return mask * z, (1 - mask) * z


class ContrastiveDenoiser(nn.Module):
    """Stage 3, contrastive denoising: a learned mask splits each code into signal and noise parts; a projector and
    an InfoNCE loss teach it, on two noisy views of every pseudo-tissue (DECODE's artificial noise cells added, drawn
    by :class:`~decode_omics.model._pseudotissues.PseudoTissueSampler`), to keep what the clean code holds.

    Parameters
    ----------
    mask
        The :class:`MaskingDenoiser` (built first, before the heads, so a seed gives the same weights as ever).
    n_latent
        Latent dimension.
    """

    def __init__(self, mask: MaskingDenoiser, n_latent: int):
        super().__init__()
        self.mask = mask
        self.projector = nn.Sequential(nn.Linear(n_latent, n_latent), nn.ReLU(), nn.Linear(n_latent, 64))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(signal, noise)`` parts of the codes ``z``."""
        return self.mask(z)

    def loss(
        self, z_clean: torch.Tensor, signal: torch.Tensor, noise: torch.Tensor, temperature: float = 0.1
    ) -> torch.Tensor:
        """InfoNCE: each clean code's positive is the purified (signal) part of its noisy view; its negatives are
        the noise part of that view and the signal parts of the other samples. Gradients reach the mask.
        """
        q = F.normalize(self.projector(z_clean), dim=-1)
        p = F.normalize(self.projector(signal), dim=-1)
        n = F.normalize(self.projector(noise), dim=-1)
        pos_and_others = q @ p.T  # B x B: diagonal = positives, off-diagonal = other samples' signal
        own_noise = (q * n).sum(dim=-1, keepdim=True)  # B x 1
        logits = torch.cat([pos_and_others, own_noise], dim=1) / temperature
        target = torch.arange(q.shape[0], device=q.device)
        return F.cross_entropy(logits, target)


class DeconvolutionHead(nn.Module):
    """Stage 4: relative fractions (softmax over the known labels) from the signal part of a code and, with an
    unknown head, the share of unknown material from the signal and noise parts and residual statistics of the input.

    The unknown head reads the codes detached, sending no gradient back into them: it reports how much of a sample
    the reference explains without changing how the fractions are learnt (since 2026-12-04; see the method page,
    *Why the unknown head reads detached codes*).

    Parameters
    ----------
    n_latent, n_hidden, n_labels, n_features
        Latent dimension, network width (the head is ``n_hidden // 4`` wide, the unknown head ``n_hidden // 8``),
        known labels, input features.
    absolute
        Also predict the unknown share.
    """

    RESIDUAL_QUANTILES = (0.05, 0.1, 0.25, 0.5)

    def __init__(self, n_latent: int, n_hidden: int, n_labels: int, n_features: int, absolute: bool):
        super().__init__()
        self.relative = nn.Sequential(_mlp([n_latent, n_hidden // 4]), nn.Linear(n_hidden // 4, n_labels))
        self.unknown = self._unknown_head(n_latent, n_hidden) if absolute else None
        # Mean per-cell profile of every label (linear scale), for the residual statistics of the unknown head.
        self.register_buffer("label_profiles", torch.zeros(n_labels, n_features))

    @classmethod
    def _unknown_head(cls, n_latent: int, n_hidden: int) -> nn.Sequential:
        return nn.Sequential(
            _mlp([2 * n_latent + len(cls.RESIDUAL_QUANTILES), n_hidden // 8]), nn.Linear(n_hidden // 8, 1)
        )

    def add_unknown_head(self, n_latent: int, n_hidden: int) -> None:
        """Give a relative-mode head an unknown head (it reads detached codes, as every unknown head does)."""
        self.unknown = self._unknown_head(n_latent, n_hidden)

    def residual_statistics(self, x: torch.Tensor, relative: torch.Tensor) -> torch.Tensor:
        """How much of each sample the known labels can explain: quantiles, over the features the known mixture
        expresses most, of ``composition(x) / composition(known mixture)``. A share ``a`` of known material and
        ``1 - a`` of anything else (non-negative) bounds these ratios from below by ``a``."""
        known = relative.detach() @ self.label_profiles
        comp_x = x / x.sum(dim=1, keepdim=True).clamp_min(1e-12)
        comp_k = known / known.sum(dim=1, keepdim=True).clamp_min(1e-12)
        ratio = comp_x / comp_k.clamp_min(1e-12)
        weight = self.label_profiles / self.label_profiles.sum(dim=1, keepdim=True).clamp_min(1e-12)
        expressed = weight.mean(dim=0) >= weight.mean(dim=0).median()
        q = torch.tensor(self.RESIDUAL_QUANTILES, device=x.device, dtype=x.dtype)
        return torch.quantile(ratio[:, expressed], q, dim=1).T.clamp(0, 2)

    def forward(self, signal: torch.Tensor, noise: torch.Tensor, x: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """``signal``, ``noise``, ``relative`` fractions and, with an unknown head and the input ``x``, ``unknown``."""
        out = {"signal": signal, "noise": noise, "relative": F.softmax(self.relative(signal), dim=-1)}
        if self.unknown is not None and x is not None:
            stats = self.residual_statistics(x, out["relative"])
            logit = self.unknown(torch.cat([signal.detach(), noise.detach(), stats], dim=-1))
            out["unknown"] = torch.sigmoid(logit).squeeze(-1)
        return out

    @staticmethod
    def fraction_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Squared error summed over labels, averaged over samples."""
        return ((pred - target) ** 2).sum(dim=-1).mean()

    @staticmethod
    def unknown_loss(clean: torch.Tensor, with_unknown: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
        """Squared error of the unknown share on clean pseudo-tissues (share 0) and on a view with unknown material
        added (its ``share``), averaged."""
        return (clean**2).mean() / 2 + ((with_unknown - share) ** 2).mean() / 2


#: The layout of ``model_weights.pt`` (decode-omics 0.x files): each file key prefix and the module's, in file order.
FILE_LAYOUT = (
    ("label_profiles", "head.label_profiles"),
    ("transform.", "encoder.transform."),
    ("encoder.", "encoder.net."),
    ("denoiser.net.", "denoiser.mask.net."),
    ("head.", "head.relative."),
    ("unknown_head.", "head.unknown."),
    ("discriminator.", "adversary.discriminator."),
    ("projector.", "denoiser.projector."),
)


def _rename(state: dict, pairs) -> dict:
    out = {}
    for old, new in pairs:
        out |= {new + k[len(old) :]: v for k, v in state.items() if k.startswith(old)}
    unknown = set(state) - {k for old, _ in pairs for k in state if k.startswith(old)}
    if unknown:
        raise KeyError(f"Unexpected weights {sorted(unknown)[:5]}.")
    return out


def to_file_layout(state: dict) -> dict:
    """A module state dict under the keys model files use (stable across versions, see :data:`FILE_LAYOUT`)."""
    return _rename(state, [(new, old) for old, new in FILE_LAYOUT])


def from_file_layout(state: dict) -> dict:
    """The inverse of :func:`to_file_layout`."""
    return _rename(state, FILE_LAYOUT)


class DECODEModule(nn.Module):
    """The four stages in one network: :class:`Encoder` -> :class:`ContrastiveDenoiser` -> :class:`DeconvolutionHead`,
    with the :class:`DomainAdversary` on the codes.

    Parameters
    ----------
    n_features
        Input features.
    n_labels
        Known labels (cell types or states).
    absolute
        Also predict the share of unknown material (from the signal and noise parts).
    n_hidden
        Width of the encoder's first layer (the second is half of it).
    n_latent
        Latent dimension.
    dropout
        Dropout in the encoder.
    input_normalization
        Per-sample normalisation of the input (see :class:`InputTransform`).
    unknown_head
        Relative mode: also learn the share of unknown material, without letting it shape the codes the fractions
        are read from, to report how much of each sample the reference explains (:meth:`unexplained`; built after
        every other part, so the other parts start from the weights a seed always gave them).
    """

    def __init__(
        self,
        n_features: int,
        n_labels: int,
        *,
        absolute: bool = False,
        n_hidden: int = 256,
        n_latent: int = 128,
        dropout: float = 0.1,
        input_normalization: str = "composition",
        unknown_head: bool = False,
    ):
        super().__init__()
        self.absolute = absolute
        # Built in this order so that a seed draws the same initial weights as it always did.
        self.encoder = Encoder(n_features, n_hidden, n_latent, dropout, input_normalization)
        mask = MaskingDenoiser(n_latent, n_hidden // 2)
        head = DeconvolutionHead(n_latent, n_hidden, n_labels, n_features, absolute)
        adversary = DomainAdversary(n_latent, n_hidden)
        self.denoiser = ContrastiveDenoiser(mask, n_latent)
        self.head = head
        self.adversary = adversary
        if unknown_head and not absolute:
            self.head.add_unknown_head(n_latent, n_hidden)

    @property
    def transform(self) -> InputTransform:
        """The encoder's input transform (its ``mask`` buffer holds the features the network reads)."""
        return self.encoder.transform

    @property
    def label_profiles(self) -> torch.Tensor:
        """Mean per-cell profile of every label (labels x features, linear scale)."""
        return self.head.label_profiles

    def encode(self, x: torch.Tensor, input_noise: float = 0.0) -> torch.Tensor:
        """Latent code of linear-scale profiles (see :class:`Encoder`)."""
        return self.encoder(x, input_noise)

    def fractions_from_latent(
        self, z: torch.Tensor, denoise: bool = True, x: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The head's outputs (see :meth:`DeconvolutionHead.forward`) from the codes' signal parts, or from the
        codes themselves without the denoiser."""
        signal, noise = self.denoiser(z) if denoise else (z, torch.zeros_like(z))
        return self.head(signal, noise, x)

    def unexplained(self, x: torch.Tensor, denoise: bool = True) -> torch.Tensor:
        """The unknown head's share of material the known labels do not explain, per sample (``n``)."""
        if self.head.unknown is None:
            raise ValueError("This network has no unknown head.")
        return self.fractions_from_latent(self.encode(x), denoise=denoise, x=x)["unknown"]

    def forward(self, x: torch.Tensor, denoise: bool = True) -> torch.Tensor:
        """Fractions: ``n x K`` (relative) or ``n x (K + 1)`` with the unknown share last (absolute)."""
        out = self.fractions_from_latent(self.encode(x), denoise=denoise, x=x if self.absolute else None)
        if not self.absolute:
            return out["relative"]
        u = out["unknown"].unsqueeze(-1)
        return torch.cat([(1 - u) * out["relative"], u], dim=-1)
