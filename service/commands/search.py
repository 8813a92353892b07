"""`papers` subcommands: search (placeholder until its issue lands)."""

from __future__ import annotations

COMMANDS: list = []
