"""Streams cut into lists: how ingest upserts papers and the build embeds them, a batch
at a time, without holding the whole stream (a million papers) in memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], batch_size: int) -> Iterator[list[T]]:
    """Lists of ``batch_size`` items (the last one shorter) from any iterable, lazily."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
