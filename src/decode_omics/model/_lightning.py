"""Lightning as decode-omics runs it: one progress bar on stderr, and none of Lightning's chatter.

A user sees our own messages (through the ``decode_omics`` logger and our warnings) and the results; Lightning's
device banner, seed line, logger tips, stop notices and third-party deprecation warnings are not ours to show.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from scvi import settings
from scvi.train._progress import ProgressBar
from tqdm.auto import tqdm

#: Loggers Lightning prints its info lines through ("GPU available", "Seed set to", "max_epochs reached", tips).
_LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")

#: Warnings raised inside Lightning / torch that a user cannot act on.
_THIRD_PARTY_WARNINGS = (
    ".*LeafSpec.*",  # torch's pytree deprecation, raised by Lightning's own code
    ".*does not have many workers.*",  # our loaders are in-process generators by design
    ".*The number of training batches.*",
)


class StderrProgressBar(ProgressBar):
    """scvi-tools' per-epoch progress bar, written to stderr so that stdout carries results only."""

    def init_train_tqdm(self, trainer):
        """A tqdm bar over the epochs on ``sys.stderr``."""
        return tqdm(total=trainer.max_epochs, desc="Training", file=sys.stderr, disable=self.is_disabled)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's info lines and the third-party warnings above for the duration of the block; our own
    warnings and log messages pass."""
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for message in _THIRD_PARTY_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def with_progress_bar(trainer_kwargs: dict) -> dict:
    """``trainer_kwargs`` with our stderr progress bar in place of scvi-tools' stdout one (when bars are on)."""
    kwargs = dict(trainer_kwargs)
    if kwargs.get("enable_progress_bar", True) and kwargs.get("simple_progress_bar", True):
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), StderrProgressBar()]
        kwargs["simple_progress_bar"] = False
    return kwargs


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with ``scvi.settings.seed = seed``, and give the user's own setting back afterwards."""
    previous = settings.seed
    try:
        with quiet_lightning():  # setting the seed makes Lightning print "Seed set to ..."
            settings.seed = seed
        yield
    finally:
        # the recorded value only: assigning through the setter would reseed the user's global generators again
        settings._seed = previous
