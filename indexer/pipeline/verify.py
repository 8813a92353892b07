"""Does the published index version answer what its manifest promises?

Why: a build that found its BM25 directory missing used to create an empty index,
publish nothing new and exit 0, so the service reported ready and every search returned
0 hits. ``papers build`` (and the nightly run) now check the published version before
building (what fails is rebuilt) and after publishing (exit 0 only when it verifies).

What is checked: the current manifest reads and passes its checksum; the BM25 index
opens and holds exactly the manifest's document count; every embedding file the
manifest names exists (and, with ``checksums=True``, matches its checksum).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from indexer.errors import PapersError
from indexer.lexical.bm25 import BM25Index
from indexer.manifest import Manifest, read_manifest, sha256_file
from indexer.paths import bm25_path
from indexer.settings import Settings


@dataclass
class Verification:
    """The published version and what is wrong with it (nothing: ``ok``)."""

    manifest: Manifest | None = None
    problems: list[str] = field(default_factory=list)
    manifest_broken: bool = False
    bm25_broken: bool = False  # missing, unreadable, or not holding the manifest's papers

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return "; ".join(self.problems) or "ok"


def verify_published(settings: Settings, *, checksums: bool = False) -> Verification:
    """Check the published version on disk (see the module docstring)."""
    v = Verification()
    try:
        v.manifest = read_manifest(settings.index_dir)
    except PapersError as e:
        v.manifest_broken = True
        v.problems.append(e.message)
    if v.manifest is None:
        if not v.manifest_broken:
            v.problems.append("no index version has been published")
        return v
    m = v.manifest
    if not (bm25_path(settings) / "meta.json").exists():
        v.bm25_broken = True
        v.problems.append(f"the BM25 index of version {m.version} is missing")
    else:
        try:
            ix = BM25Index.open(bm25_path(settings), readonly=True)
            docs = ix.num_docs
        except PapersError as e:
            v.bm25_broken = True
            v.problems.append(f"the BM25 index of version {m.version} cannot be opened ({e.message})")
        else:
            if docs != m.docs:
                v.bm25_broken = True
                v.problems.append(f"the BM25 index holds {docs} papers, version {m.version} says {m.docs}")
    for model, info in m.embeddings.items():
        base = settings.index_dir / str(info.get("dir", ""))
        for name, digest in (info.get("files") or {}).items():
            path = base / name
            if not path.is_file():
                v.problems.append(f"embedding file {name} of {model} is missing")
            elif checksums and sha256_file(path) != digest:
                v.problems.append(f"embedding file {name} of {model} failed its checksum")
    return v
