"""An exponential moving average of a network's weights over its training steps (Polyak averaging)."""

from __future__ import annotations

import torch


class WeightAverage:
    """The moving average of a network's parameters, folded in after every training step.

    Parameters
    ----------
    decay
        Decay per step, in ``(0, 1)``. The first steps use a smaller one, ``(1 + t) / (10 + t)`` at step ``t``, so
        that the average does not hold on to the random initial weights (TensorFlow's ``num_updates``).
    """

    def __init__(self, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"The decay of a weight average must be in (0, 1), got {decay}.")
        self.decay = float(decay)
        self.n_steps = 0
        self.average: dict[str, torch.Tensor] | None = None

    @torch.no_grad()
    def update(self, module: torch.nn.Module, frozen: tuple[str, ...] = ()) -> None:
        """Fold the module's current parameters into the average, except those whose names start with one of
        ``frozen`` (an ensemble's members that stopped training keep the average they stopped with)."""
        params = dict(module.named_parameters())
        if self.average is None:
            self.average = {name: p.detach().clone() for name, p in params.items()}
        if frozen:
            params = {name: p for name, p in params.items() if not name.startswith(frozen)}
        self.n_steps += 1
        decay = min(self.decay, (1 + self.n_steps) / (10 + self.n_steps))
        # one multi-tensor kernel per operation, not one per parameter (38 per network, 152 for 4 members); the same
        # arithmetic, element for element, as average.mul_(decay).add_(p, alpha=1 - decay)
        average = [self.average[name] for name in params]
        torch._foreach_mul_(average, decay)
        torch._foreach_add_(average, [p.detach() for p in params.values()], alpha=1 - decay)

    @torch.no_grad()
    def copy_to(self, module: torch.nn.Module) -> None:
        """Set the module's parameters to the average (nothing happens before the first update)."""
        if self.average is None:
            return
        for name, p in module.named_parameters():
            p.copy_(self.average[name])
