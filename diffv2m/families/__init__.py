"""Model families: what a model's latent decodes to, and how the decoded windows become a take.

Generation is the same for every family up to the decoder (features -> conditions -> sampler
-> decoder, :func:`diffv2m.synthesis.synthesise`); from there :func:`family_of` hands the
decoded windows to the family named by ``config.latent_family``, which stitches them into a
:class:`~diffv2m.synthesis.Take` and writes the extra outputs it supports.  A new family is a
new module here and one line in :data:`FAMILIES`.  Torch-free (generation runs here).

The interface (:class:`Family`):

* ``name``: the ``latent_family`` it serves.
* ``autoencoder``: ``"module:Class"`` of its torch autoencoder (imported by the trainers and
  the exporter only, so this package stays torch-free).
* ``outputs``: the extra outputs it can write besides the mix (``"midi"``, ``"stems"``).
* ``take(...)``: decoded windows ``(start_second, array)`` -> one Take (audio, and the notes
  where the family has them); with ``stems=True`` the take also carries one array per track
  from the same render as the mix.
* ``check_options(args, config, settings)``: the family's own CLI options, checked before any
  work; returns the settings with them filled in.
* ``write_outputs(take, midi=, stems=, metadata=)``: the extra files (temporaries of the job's
  output transaction).
"""
from __future__ import annotations

import importlib
import os
from typing import Any, Protocol

from diffv2m.errors import UserError

#: ``latent_family`` -> the module that implements it (imported when first asked for)
FAMILIES = {"audio": "diffv2m.families.audio", "score": "diffv2m.families.score"}


class Family(Protocol):
    name: str
    autoencoder: str
    outputs: frozenset[str]

    def take(self, backend: Any, conditions: Any, settings: Any,
             pieces: list[tuple[int, Any]], timings: dict[str, float], *,
             progress: Any = None, soundfont: str | None = None, stems: bool = False) -> Any: ...

    def check_options(self, args: Any, config: Any, settings: Any) -> Any: ...

    def write_outputs(self, take: Any, *, midi: str | os.PathLike | None = None,
                      stems: dict[str, str | os.PathLike] | None = None,
                      metadata: dict[str, Any] | None = None) -> None: ...


def family(name: str) -> Family:
    """The family registered as ``name``."""
    if name not in FAMILIES:
        raise UserError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}")
    return importlib.import_module(FAMILIES[name]).FAMILY


def family_of(config: Any) -> Family:
    """The family of a :class:`~diffv2m.config.ModelConfig` (its ``latent_family``)."""
    return family(config.latent_family)


def check_outputs(fam: Family, *, midi: Any = None, stems: Any = None) -> None:
    """One-line UserError when an extra output is asked of a family that does not make it."""
    for kind, path in (("midi", midi), ("stems", stems)):
        if path and kind not in fam.outputs:
            where = path if kind == "midi" else next(iter(path.values()))
            raise UserError(f"{where}: MIDI and stems come from a score-family model "
                            "(--model score)")
