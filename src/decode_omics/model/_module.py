"""The DECODE network: encoder, masking denoiser, deconvolution head and domain discriminator."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn


class GradientReversal(torch.autograd.Function):
    """Identity forward; gradient multiplied by ``-weight`` backward (Ganin & Lempitsky, 2015)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.weight * grad, None


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


class MaskingDenoiser(nn.Module):
    """Splits a latent code into a signal part ``m * z`` and a noise part ``(1 - m) * z`` with a learned mask."""

    def __init__(self, n_latent: int, n_hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_latent, n_hidden), nn.LeakyReLU(0.2), nn.Linear(n_hidden, n_latent))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.sigmoid(self.net(z))
        return mask * z, (1 - mask) * z


class DECODEModule(nn.Module):
    """Encoder -> masking denoiser -> head, with a domain discriminator and a contrastive projector.

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
        Latent dimension; the latent code is bounded by a LayerNorm (an unbounded code lets the reversed gradient
        inflate it).
    dropout
        Dropout in the encoder.
    input_normalization
        Per-sample normalisation of the input (see :class:`InputTransform`).
    """

    RESIDUAL_QUANTILES = (0.05, 0.1, 0.25, 0.5)

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
    ):
        super().__init__()
        self.absolute = absolute
        self.transform = InputTransform(n_features, input_normalization)
        self.encoder = nn.Sequential(
            _mlp([n_features, n_hidden, n_hidden // 2], dropout=dropout),
            nn.Linear(n_hidden // 2, n_latent),
            nn.LayerNorm(n_latent),
        )
        self.denoiser = MaskingDenoiser(n_latent, n_hidden // 2)
        self.head = nn.Sequential(_mlp([n_latent, n_hidden // 4]), nn.Linear(n_hidden // 4, n_labels))
        self.unknown_head = (
            nn.Sequential(
                _mlp([2 * n_latent + len(self.RESIDUAL_QUANTILES), n_hidden // 8]), nn.Linear(n_hidden // 8, 1)
            )
            if absolute
            else None
        )
        # Mean per-cell profile of every label (linear scale), for the residual statistics of the unknown head.
        self.register_buffer("label_profiles", torch.zeros(n_labels, n_features))
        self.discriminator = nn.Sequential(_mlp([n_latent, n_hidden // 4]), nn.Linear(n_hidden // 4, 1))
        self.projector = nn.Sequential(nn.Linear(n_latent, n_latent), nn.ReLU(), nn.Linear(n_latent, 64))

    def encode(self, x: torch.Tensor, input_noise: float = 0.0) -> torch.Tensor:
        """Latent code of linear-scale profiles; Gaussian input noise of sd ``input_noise`` in training."""
        h = self.transform(x)
        if input_noise > 0 and self.training:
            h = h + input_noise * torch.randn_like(h)
        return self.encoder(h)

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

    def fractions_from_latent(
        self, z: torch.Tensor, denoise: bool = True, x: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Relative fractions (softmax over known labels) and, in absolute mode (needs the input ``x``), the
        unknown share."""
        if denoise:
            signal, noise = self.denoiser(z)
        else:
            signal, noise = z, torch.zeros_like(z)
        out = {"signal": signal, "noise": noise, "relative": F.softmax(self.head(signal), dim=-1)}
        if self.unknown_head is not None:
            stats = self.residual_statistics(x, out["relative"])
            logit = self.unknown_head(torch.cat([signal, noise, stats], dim=-1))
            out["unknown"] = torch.sigmoid(logit).squeeze(-1)
        return out

    def forward(self, x: torch.Tensor, denoise: bool = True) -> torch.Tensor:
        """Fractions: ``n x K`` (relative) or ``n x (K + 1)`` with the unknown share last (absolute)."""
        out = self.fractions_from_latent(self.encode(x), denoise=denoise, x=x)
        if self.unknown_head is None:
            return out["relative"]
        u = out["unknown"].unsqueeze(-1)
        return torch.cat([(1 - u) * out["relative"], u], dim=-1)

    def domain_logits(self, z: torch.Tensor, weight: float) -> torch.Tensor:
        """Discriminator logits on gradient-reversed latent codes (1 = real bulk, 0 = pseudo-tissue)."""
        return self.discriminator(GradientReversal.apply(z, weight)).squeeze(-1)

    def contrastive_loss(
        self, z_clean: torch.Tensor, signal: torch.Tensor, noise: torch.Tensor, temperature: float = 0.1
    ) -> torch.Tensor:
        """InfoNCE: each clean code's positive is the purified (signal) part of its noisy view; its negatives are
        the noise part of that view and the signal parts of the other samples. Gradients reach the denoiser.
        """
        q = F.normalize(self.projector(z_clean), dim=-1)
        p = F.normalize(self.projector(signal), dim=-1)
        n = F.normalize(self.projector(noise), dim=-1)
        pos_and_others = q @ p.T  # B x B: diagonal = positives, off-diagonal = other samples' signal
        own_noise = (q * n).sum(dim=-1, keepdim=True)  # B x 1
        logits = torch.cat([pos_and_others, own_noise], dim=1) / temperature
        target = torch.arange(q.shape[0], device=q.device)
        return F.cross_entropy(logits, target)
