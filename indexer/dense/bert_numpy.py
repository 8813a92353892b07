"""A BERT sentence encoder for queries in plain numpy, reading the weights in place.

Why: a service worker that encodes queries with sentence-transformers imports torch and
transformers first — 286 MB of anonymous memory per worker before any weight is loaded
(measured: torch 122 MB, sentence-transformers and transformers 164 MB), in each of the
service's worker processes. A query is one short text: six small matrix products per layer,
which numpy does as fast on one thread. This module runs the same forward pass
(BertModel → mean pooling → L2 norm, the all-MiniLM-L6-v2 recipe) with

- the weights memory-mapped straight from the model's ``model.safetensors``: file pages,
  shared by every worker through the page cache, and of the 47 MB word-embedding table
  only the rows of words actually queried are ever read;
- the model's own fast tokenizer (``tokenizer.json`` through the ``tokenizers`` library,
  which sentence-transformers uses too), truncated at the model's ``max_seq_length``.

Documents are still embedded by sentence-transformers (batches, GPUs); this encoder only
has to agree with it, and a test holds it to cosine ≥ 0.9999 on real titles and
abstracts. Anything it does not implement (another architecture or pooling, weights
that are not float32) raises :class:`UnsupportedModel` and the caller falls back to
sentence-transformers.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


class UnsupportedModel(Exception):
    """The model directory is not one this encoder reproduces exactly."""


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file as a read-only view into one memory map
    (no copy: pages are read, and shared between processes, only as they are used)."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len)
    tensors: dict[str, np.ndarray] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_DTYPES.get(spec["dtype"])
        if dtype is None:
            raise UnsupportedModel(f"{path.name}: tensor {name} has dtype {spec['dtype']}")
        start, end = spec["data_offsets"]
        tensors[name] = data[start:end].view(dtype).reshape(spec["shape"])
    return tensors


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to 1.2e-7 absolute (Numerical Recipes' erfc Chebyshev fit), in float64:
    numpy has no erf, and BERT's GELU is the exact ``0.5·x·(1 + erf(x/√2))``."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0)


def _gelu(x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1.0 + _erf(x64 * 0.7071067811865476))).astype(np.float32)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UnsupportedModel(f"{path.name}: {e}") from e


def _checked_configs(root: Path) -> tuple[dict, dict]:
    """``(config.json, sentence_bert_config.json or {})`` of a model folder this encoder
    reproduces exactly, checked in this order; UnsupportedModel naming the first thing that
    differs (the caller falls back to sentence-transformers)."""
    modules = _load_json(root / "modules.json")
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling", "Normalize"], ["Transformer", "Pooling"]) or modules[0].get("path"):
        raise UnsupportedModel(f"modules {kinds} (needs Transformer at the root, Pooling[, Normalize])")
    pooling = _load_json(root / modules[1]["path"] / "config.json")
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        raise UnsupportedModel(f"pooling {modes} (needs mean tokens only)")
    config = _load_json(root / "config.json")
    if (config.get("model_type"), config.get("hidden_act"), config.get("position_embedding_type", "absolute")) != ("bert", "gelu", "absolute"):
        raise UnsupportedModel("not a BERT model with GELU and absolute positions")
    st_config = _load_json(root / "sentence_bert_config.json") if (root / "sentence_bert_config.json").exists() else {}
    if st_config.get("do_lower_case"):
        raise UnsupportedModel("do_lower_case outside the tokenizer")
    if not (root / "model.safetensors").exists() or not (root / "tokenizer.json").exists():
        raise UnsupportedModel("needs model.safetensors and tokenizer.json")
    return config, st_config


def _layer_weights(w: dict[str, np.ndarray], pre: str) -> tuple[np.ndarray, ...]:
    """One encoder layer's 16 tensors in the order :meth:`NumpyBertEncoder._forward` unpacks
    them (KeyError when one is missing)."""
    def t(name: str) -> np.ndarray:
        return w[pre + name]

    # Linear weights are stored [out, in]; .T is a free view (BLAS transposes)
    return (
        t("attention.self.query.weight").T, t("attention.self.query.bias"),
        t("attention.self.key.weight").T, t("attention.self.key.bias"),
        t("attention.self.value.weight").T, t("attention.self.value.bias"),
        t("attention.output.dense.weight").T, t("attention.output.dense.bias"),
        t("attention.output.LayerNorm.weight"), t("attention.output.LayerNorm.bias"),
        t("intermediate.dense.weight").T, t("intermediate.dense.bias"),
        t("output.dense.weight").T, t("output.dense.bias"),
        t("output.LayerNorm.weight"), t("output.LayerNorm.bias"),
    )


class NumpyBertEncoder:
    """``encode(texts)`` → float32 unit rows, as sentence-transformers would return them
    for a BERT model with mean pooling (one text at a time: queries are short)."""

    def __init__(self, model_dir: str | Path, name: str | None = None):
        root = Path(model_dir)
        self.name = name or root.name
        config, st_config = _checked_configs(root)

        from tokenizers import Tokenizer

        self.max_len = int(st_config.get("max_seq_length") or config.get("max_position_embeddings", 512))
        self._tok = Tokenizer.from_file(str(root / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(self.max_len)

        w = read_safetensors(root / "model.safetensors")
        if any(v.dtype != np.float32 for k, v in w.items() if not k.endswith("position_ids")):
            raise UnsupportedModel("weights are not float32")
        p = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.dim = int(config["hidden_size"])
        try:
            self._word = w[f"{p}embeddings.word_embeddings.weight"]
            self._pos = w[f"{p}embeddings.position_embeddings.weight"]
            self._type0 = w[f"{p}embeddings.token_type_embeddings.weight"][0]
            self._emb_ln = (w[f"{p}embeddings.LayerNorm.weight"], w[f"{p}embeddings.LayerNorm.bias"])
            self._layers = [_layer_weights(w, f"{p}encoder.layer.{i}.") for i in range(int(config["num_hidden_layers"]))]
        except KeyError as e:
            raise UnsupportedModel(f"missing tensor {e}") from e

    def token_ids(self, text: str) -> list[int]:
        """Token ids as sentence-transformers makes them (it strips the text first)."""
        return self._tok.encode(text.strip()).ids

    def _forward(self, ids: list[int]) -> np.ndarray:
        n, h = len(ids), self.heads
        x = self._word[ids] + self._pos[:n] + self._type0
        x = _layer_norm(x, *self._emb_ln, self.eps)
        scale = 1.0 / np.sqrt(self.dim // h, dtype=np.float32)
        for qw, qb, kw, kb, vw, vb, ow, ob, ln1w, ln1b, iw, ib, o2w, o2b, ln2w, ln2b in self._layers:
            q = (x @ qw + qb).reshape(n, h, -1).transpose(1, 0, 2)
            k = (x @ kw + kb).reshape(n, h, -1).transpose(1, 2, 0)
            v = (x @ vw + vb).reshape(n, h, -1).transpose(1, 0, 2)
            scores = (q @ k) * scale
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            ctx = (probs @ v).transpose(1, 0, 2).reshape(n, -1)
            x = _layer_norm(ctx @ ow + ob + x, ln1w, ln1b, self.eps)
            x = _layer_norm(_gelu(x @ iw + ib) @ o2w + o2b + x, ln2w, ln2b, self.eps)
        pooled = x.mean(axis=0)
        norm = float(np.linalg.norm(pooled))
        return pooled / norm if norm > 0 else pooled

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """One BLAS thread: a query's products are small, and a second thread only spins
        (measured in the service at 1M: 44–51 ms of server CPU per hybrid search with
        OpenBLAS's default threads, against 36 ms with torch on one thread)."""
        from indexer.dense.vectors import one_blas_thread

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with one_blas_thread():
            for i, text in enumerate(texts):
                out[i] = self._forward(self.token_ids(text))
        return out
