"""`papers` subcommands, one module per area; service/cli.py registers them.

These modules import only click, the standard library and :mod:`indexer.errors` when
loaded; everything heavier (settings, the engine, models) is imported inside the
command that needs it, so `papers --help` starts in a fraction of a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from indexer.settings import Settings


def get_settings() -> Settings:
    """:func:`indexer.settings.get_settings`, imported on first use (pydantic-settings
    alone costs about 0.1 s to import)."""
    from indexer.settings import get_settings as load

    return load()
