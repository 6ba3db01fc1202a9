"""``flk-agent codebook fit`` and ``flk-agent codebook show``: PQ codebooks for r, in versioned files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent_client import codebook


class CodebookCommandError(Exception):
    """A codebook command that cannot be carried out; the message says why."""


def cmd_fit(args: argparse.Namespace) -> int:
    """Embed the reference texts token by token and fit a codebook on all their tokens."""
    from agent_client import text

    out = Path(args.out)
    if out.exists():
        raise CodebookCommandError(f"{out} exists: a codebook file is never rewritten, give the new fit a new version")
    paragraphs: list[str] = []
    for name in args.texts:
        try:
            content = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CodebookCommandError(f"cannot read the text {name}: {exc}") from None
        # One text per blank-line-separated paragraph: each is embedded on its own, as an LLM output would be.
        paragraphs += [" ".join(p.split()) for p in content.split("\n\n") if p.strip()]
    if not paragraphs:
        raise CodebookCommandError("the reference texts are empty")
    try:
        model = text.load_model(args.model)
    except text.TextExtraMissing as exc:
        raise CodebookCommandError(str(exc)) from None
    import numpy as np

    ids = [text.token_ids(p, model) for p in paragraphs]
    tokens = np.concatenate(text.embed_token_ids(ids, model))
    meta = {
        "name": args.name,
        "version": args.version,
        "model": args.model or text.default_model(),
        "corpus": args.corpus or ", ".join(Path(t).name for t in args.texts),
        "paragraphs": len(paragraphs),
    }
    try:
        fitted = codebook.fit_codebook(
            tokens, subspaces=args.subspaces, codes=args.codes, seed=args.seed, iterations=args.iterations,
            sample=args.sample, meta=meta,
        )  # fmt: skip
        codebook.save_codebook(fitted, out)
    except codebook.CodebookError as exc:
        raise CodebookCommandError(str(exc)) from None
    print(f"flk-agent: codebook {fitted.name} ({fitted.subspaces} blocks x {fitted.codes} codes, {len(tokens)} tokens)"
          f" written to {out}, sha256 {fitted.digest}")  # fmt: skip
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print what a codebook file holds (its metadata), after checking its centroids against their digest."""
    path = args.path or str(codebook.shipped_codebook_path())
    try:
        found = codebook.load_codebook(path)
    except codebook.CodebookError as exc:
        raise CodebookCommandError(str(exc)) from None
    sys.stdout.write(json.dumps({"path": path, **found.meta}, sort_keys=True, ensure_ascii=False) + "\n")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``codebook`` command and its actions, on the CLI's subparsers."""
    c = sub.add_parser(
        "codebook",
        help="fit or show the PQ codebook r is coded with",
        description="PQ codebooks for r: fitted once on a reference corpus, stored in a versioned file. The text "
        "path uses the one the agent ships for all-MiniLM-L6-v2, or the file FLK_PQ_CODEBOOK names.",
    )
    csub = c.add_subparsers(dest="codebook_command", required=True, metavar="ACTION")
    f = csub.add_parser(
        "fit",
        help="fit a codebook on reference texts",
        description="Embed reference texts (UTF-8, one text per paragraph) token by token and fit k-means codes in "
        'each block of coordinates. Needs pip install "flk-agent-client[text]". Never overwrites a file.',
    )
    f.add_argument("texts", nargs="+", metavar="FILE", help="reference texts (ordinary prose of the kind agents write)")
    f.add_argument("--out", required=True, metavar="PATH", help="the codebook file to write (.npz)")
    f.add_argument("--name", required=True, help="the codebook's name, e.g. all-MiniLM-L6-v2.pq8x16")
    f.add_argument("--version", type=int, required=True, help="its version: a new fit is a new version")
    f.add_argument("--model", help="the sentence-transformers model (default: the text path's)")
    f.add_argument("--corpus", help="a description of the reference corpus, kept in the file")
    f.add_argument("--codes", type=int, default=codebook.DEFAULT_CODES, help="codes per block (default 64)")
    f.add_argument("--iterations", type=int, default=codebook.KMEANS_ITERATIONS, help="k-means rounds (default 25)")
    f.add_argument("--sample", type=int, help="fit on this many of the corpus's tokens, drawn with --seed")
    f.add_argument("--subspaces", type=int, default=codebook.DEFAULT_SUBSPACES, help="blocks (default 8)")
    f.add_argument("--seed", type=int, default=0, help="seed of k-means' initial centroids (default 0)")
    f.set_defaults(func=cmd_fit)
    s = csub.add_parser("show", help="print a codebook's metadata", description="Print a codebook file's metadata.")
    s.add_argument("path", nargs="?", help="the codebook file (default: the one the agent ships)")
    s.set_defaults(func=cmd_show)
