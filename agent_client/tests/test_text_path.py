"""The text path: an LLM output embedded token by token with all-MiniLM-L6-v2, offline, as a PCS (issue 20, item 4)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from agent_client import codebook, text
from agent_client.schema import parse_pcs

pytest.importorskip("sentence_transformers", reason='the text extra: pip install "flk-agent-client[text]"')

FLUENT = (
    "A replica applies the write-ahead log in order, so a reader that connects to it sees the transactions the "
    "primary committed a moment before. When the network is slow the replica falls behind, and queries that must "
    "see their own writes go to the primary instead."
)
LOOP = "the replica applies the log and the replica applies the log and " * 6


@pytest.fixture(scope="session")
def model(monkeypatch_session):
    monkeypatch_session.setenv("HF_HUB_OFFLINE", "1")  # the model comes from the installed package, never the Hub
    return text.load_model()  # cached for the process: loaded once per test session


@pytest.fixture(scope="session")
def monkeypatch_session():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_every_token_of_the_text_is_one_point_without_the_special_tokens(model):
    embeddings = text.token_embeddings(FLUENT, model)
    assert embeddings.shape == (len(text.token_ids(FLUENT, model)), 384)
    # The same vectors sentence-transformers gives for the tokens, between its [CLS] and [SEP].
    reference = model.encode(FLUENT, output_value="token_embeddings").numpy()
    assert np.allclose(embeddings, reference[1:-1], atol=1e-4)


def test_a_text_longer_than_the_model_window_is_embedded_window_by_window(model):
    long_text = " ".join(f"{FLUENT} ({i})" for i in range(8))
    ids = text.token_ids(long_text, model)
    assert len(ids) > model.max_seq_length
    embeddings = text.token_embeddings(long_text, model)
    assert len(embeddings) == len(ids)
    first_window = text.token_embeddings(text_of(ids[: model.max_seq_length - 2], model), model)
    assert np.allclose(embeddings[: len(first_window)], first_window, atol=1e-4)


def text_of(ids: list[int], model: object) -> str:
    return model.tokenizer.decode(ids)


def test_in_the_first_32_tokens_a_loop_has_a_clearly_lower_r_than_fluent_text(model):
    fluent = text.build_text_pcs(FLUENT, shard_id="s", epoch=0, model=model, max_tokens=32)
    loop = text.build_text_pcs(LOOP, shard_id="s", epoch=0, model=model, max_tokens=32)
    assert loop["r"] < fluent["r"] - 0.15


def test_the_text_pcs_is_valid_and_reproducible(model):
    first = text.build_text_pcs(FLUENT, shard_id="s", epoch=3, seed=5, model=model)
    assert parse_pcs(json.dumps(first).encode()) is not None
    assert first == text.build_text_pcs(FLUENT, shard_id="s", epoch=3, seed=5, model=model)
    assert first["D_hat"] > 0  # the token cloud has structure in its principal axes, not one box per token


def test_flk_agent_build_text_writes_a_pcs(tmp_path, model):
    source = tmp_path / "answer.txt"
    source.write_text(FLUENT, encoding="utf-8")
    out = tmp_path / "pcs.json"
    result = subprocess.run(
        [sys.executable, "-m", "agent_client.cli", "build", "--text", str(source), "--shard-id", "s", "--epoch", "0",
         "--seed", "1", "--out", str(out)],
        capture_output=True, text=True, env={"PATH": "/usr/bin", "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    pcs = json.loads(out.read_text())
    assert pcs == text.build_text_pcs(FLUENT, shard_id="s", epoch=0, seed=1, model=model)


def test_without_the_extra_the_agent_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails as when it is not installed
    with pytest.raises(text.TextExtraMissing, match=r'pip install "flk-agent-client\[text\]"'):
        text.load_model("a model not loaded yet")


def test_flk_agent_codebook_fit_writes_a_versioned_codebook_that_build_codes_r_with(tmp_path, model):
    corpus = tmp_path / "reference.txt"
    corpus.write_text(f"{FLUENT}\n\nA comet orbits the sun and its tail points away from it.\n", encoding="utf-8")
    book_path = tmp_path / "small.v1.npz"
    env = {"PATH": "/usr/bin", "HF_HUB_OFFLINE": "1"}
    fit = subprocess.run(
        [sys.executable, "-m", "agent_client.cli", "codebook", "fit", str(corpus), "--out", str(book_path),
         "--name", "small", "--version", "1", "--codes", "4"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    book = codebook.load_codebook(book_path)
    assert (book.name, book.codes, book.dims, book.meta["paragraphs"]) == ("small v1", 4, 384, 2)
    again = subprocess.run(
        [sys.executable, "-m", "agent_client.cli", "codebook", "fit", str(corpus), "--out", str(book_path),
         "--name", "small", "--version", "1", "--codes", "4"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert again.returncode == 2 and "never rewritten" in again.stderr
    source = tmp_path / "answer.txt"
    source.write_text(FLUENT, encoding="utf-8")
    built = subprocess.run(
        [sys.executable, "-m", "agent_client.cli", "build", "--text", str(source), "--codebook", str(book_path),
         "--shard-id", "s", "--epoch", "0", "--seed", "1"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    pcs = json.loads(built.stdout)
    assert pcs == text.build_text_pcs(FLUENT, shard_id="s", epoch=0, seed=1, model=model, codebook=book)
    assert pcs["r"] != text.build_text_pcs(FLUENT, shard_id="s", epoch=0, seed=1, model=model)["r"]
