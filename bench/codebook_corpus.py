"""The reference corpus for a new PQ codebook: prose paragraphs of the Python standard library's docstrings.

A codebook for r is fitted once on a reference corpus and shipped (docs/agents/signals-on-text.md). This writes
that corpus from what every Python install carries, so a fit can be repeated anywhere without a download:
the docstrings of the modules and classes of the running interpreter's standard library (test packages left
out), split into paragraphs at blank lines, keeping paragraphs of at least 12 words with no doctest line. The
files are read in sorted order and the output (one paragraph per blank-line-separated block, the input
``flk-agent codebook fit`` reads) is the same for the same Python version.

    .venv/bin/python bench/codebook_corpus.py --out /tmp/stdlib-prose.txt
    HF_HUB_OFFLINE=1 .venv/bin/flk-agent codebook fit /tmp/stdlib-prose.txt \\
        --out all-MiniLM-L6-v2.pq8x64.v2.npz --name all-MiniLM-L6-v2.pq8x64 --version 2 \\
        --corpus "$(.venv/bin/python bench/codebook_corpus.py --describe)"

The shipped version 1 was fitted on an earlier extraction of the same kind (its file's metadata describes it:
1,737 paragraphs, 84,432 tokens, 20,000 sampled); that extraction was not kept, so version 1 is identified by
the SHA-256 of its centroids, and later versions by this script and the Python version named in their metadata.
"""

from __future__ import annotations

import argparse
import ast
import platform
import re
import sysconfig
from collections.abc import Iterator
from pathlib import Path

MIN_WORDS = 12
TEST_DIRS = {"test", "tests", "idle_test"}


def stdlib_docstrings(root: Path) -> Iterator[str]:
    """Module and class docstrings of every standard-library source file under ``root``, in sorted order."""
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if parts[0] in ("site-packages", "dist-packages") or TEST_DIRS.intersection(parts):
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):  # a few files are templates or for another Python
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef)) and (doc := ast.get_docstring(node)):
                yield doc


def prose_paragraphs(docstrings: Iterator[str]) -> list[str]:
    """Paragraphs of at least MIN_WORDS words with no doctest line, whitespace collapsed."""
    kept = []
    for doc in docstrings:
        for paragraph in re.split(r"\n\s*\n", doc):
            if any(line.strip().startswith((">>>", "...")) for line in paragraph.splitlines()):
                continue
            words = paragraph.split()
            if len(words) >= MIN_WORDS:
                kept.append(" ".join(words))
    return kept


def describe(paragraphs: list[str]) -> str:
    words = sum(len(p.split()) for p in paragraphs)
    return (
        f"prose paragraphs of the module and class docstrings of the Python {platform.python_version()} standard "
        f"library (bench/codebook_corpus.py: {len(paragraphs):,} paragraphs of at least {MIN_WORDS} words, "
        f"{words:,} words)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the paragraphs here, separated by blank lines")
    parser.add_argument("--describe", action="store_true", help="print the corpus description for --corpus")
    args = parser.parse_args()
    paragraphs = prose_paragraphs(stdlib_docstrings(Path(sysconfig.get_paths()["stdlib"])))
    if args.describe:
        print(describe(paragraphs))
    if args.out:
        Path(args.out).write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
        print(f"{len(paragraphs)} paragraphs written to {args.out}")
    if not (args.describe or args.out):
        parser.error("give --out FILE and/or --describe")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
