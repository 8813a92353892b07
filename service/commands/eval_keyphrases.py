"""`papers` subcommands: eval_keyphrases (placeholder until its issue lands)."""

from __future__ import annotations

COMMANDS: list = []
