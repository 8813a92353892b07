"""The one place that reads configuration.

Every knob is an environment variable with the ``PAPERS_`` prefix (or a line in an
optional ``.env`` file in the working directory). Nothing else in the code base reads
``os.environ`` for configuration; pass a :class:`Settings` around instead.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAPERS_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Directory for the database file and index artifacts")
    database_url: str = Field(default="", description="SQLAlchemy URL; default sqlite:///<data_dir>/papers.db")
    arxiv_oai_url: str = Field(default="https://oaipmh.arxiv.org/oai", description="OAI-PMH endpoint")
    arxiv_api_url: str = Field(default="https://export.arxiv.org/api/query", description="arXiv API endpoint")
    arxiv_delay: float = Field(default=3.0, ge=0, description="Seconds between requests to arXiv")
    arxiv_timeout: float = Field(default=60.0, gt=0, description="HTTP timeout for arXiv requests (s)")
    arxiv_retries: int = Field(default=5, ge=0, description="Retries for timeouts and 5xx responses")
    arxiv_read_deadline: float = Field(
        default=300.0, gt=0,
        description="Most seconds one arXiv response may take in all, however steadily it trickles in "
        "(then retried like a timeout)")
    harvest_deadline: float = Field(
        default=4 * 3600.0, ge=0,
        description="Most seconds one OAI-PMH harvest may run (0 = no limit); progress is kept and the "
        "next run resumes it")
    oai_set: str = Field(default="cs", description="Default OAI-PMH set harvested by `papers nightly`")
    embedding_model: str = Field(default="all-MiniLM-L6-v2", description="sentence-transformers model name or path")
    embedding_device: str = Field(default="cpu", description="Device for embedding (cpu, cuda)")
    query_encoder: Literal["numpy", "sentence-transformers"] = Field(
        default="numpy",
        description="How the service encodes queries for a BERT model on CPU: 'numpy' (no torch in the "
        "service, weights shared between workers) or 'sentence-transformers'")
    multilingual_model: str = Field(default="use-multilingual", description="Query-side multilingual encoder ('' to disable)")
    online_fetch: bool = Field(default=False, description="Fetch unknown arXiv ids from the arXiv API on demand")
    log_level: str = Field(default="INFO", description="Logging level")
    cors_origins: str = Field(default="", description="Comma-separated origins allowed by CORS ('' = none)")
    rate_limit: int = Field(default=600, ge=0, description="Requests per minute per client address, shared by "
                            "all workers of a server (0 = off); bursts up to the same number")
    client_concurrency: int = Field(default=1, ge=0, description="Requests one client address may have in "
                                    "progress on the whole server; more wait their turn (0 = no cap; needs "
                                    "rate_limit > 0)")
    trusted_proxies: str = Field(
        default="", description="Comma-separated addresses of reverse proxies whose X-Forwarded-For names the "
        "client ('' = none: the peer address is the client)")
    public_url: str = Field(default="", description="Public base URL of the service for absolute links in "
                            "feeds (e.g. https://papers.example.org); '' = from each request's Host header")
    request_timeout: float = Field(default=30.0, ge=0, description="Seconds a request may take before it is "
                                   "answered 503 (0 = no limit)")
    embed_threads: int = Field(default=0, ge=0, description="Intra-op threads for embedding batches (0 = all cores)")
    embed_precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto",
        description="Arithmetic for document batches of sentence-transformers models on CPU: 'bf16' (autocast, "
        "2-3x faster where the CPU has bf16 instructions, cosine >= 0.9999 to fp32), 'fp32', or 'auto' (bf16 when "
        "the CPU has it natively and a probe agrees with fp32)")

    @field_validator("log_level")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'papers.db').as_posix()}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests build their own ``Settings(...)`` instead."""
    return Settings()
