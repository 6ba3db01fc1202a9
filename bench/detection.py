"""Does the PCS catch degenerate LLM output? A labelled text corpus through the agent and the real service.

What it does, in one process on a database of its own (migrated at start, dropped at the end) and Redis db 13:

1. generates the corpus of ``bench/text_corpus.py``: normal answers and four degenerate kinds (loop,
   repetition, drift, incoherence) with lengths drawn from one range for every kind;
2. embeds every text with all-MiniLM-L6-v2 (``agent_client.text``, offline, CPU) twice: whole, and only its
   first 32 tokens (embedded on their own, as a 32-token text would be), and builds each PCS with the agent's
   ``build_pcs`` (D̂ and coh★ of the token cloud, r by product quantisation of it against the codebook the
   agent ships for all-MiniLM-L6-v2, as the text path does);
3. per setting (full length, 32 tokens), one tenant: the label share of the normal texts becomes benign audit
   labels and the fit share of each degenerate kind anomalous escalation labels (``record_label``, as the
   review queue stores them), then ``recalibrate_tenant`` under the active VerifyParams with ``score_kind``
   fitted (the formula is fitted on the labels' fit fold and the anomalous labels, and calibrated on the rest);
4. submits every held-out PCS through ``ingest.services.submit_pcs`` and reads the verdict;
5. prints per kind the share caught (not accepted), the false-escalation rate of held-out normal texts against
   delta with its Clopper–Pearson 95 % interval and the bound [delta − 1/(n+1), delta], and the AUROC,
   degenerate against normal held-out texts, of the conformal score the service answered, of each signal's
   raw value (below 0.5: the degenerate texts have lower values) and of its two-sided term (distance from the
   tenant's centre in its spread), and of the token count (which a structure detector must not need: the
   lengths overlap by construction).

    .venv/bin/python bench/detection.py [--normal 800] [--per-kind 100] [--seed 20] [--embeddings-cache FILE]

``--embeddings-cache``: keep the token embeddings in FILE (a pickle; outside the repository) and reuse them on
the next run of the same corpus; embedding is most of the run's time.

Needs the text extra (requirements-dev.txt installs it) and PostgreSQL and Redis as ``make test`` starts them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from text_corpus import KINDS, corpus  # noqa: E402 (after the path above)

WINDOW = 32


def auroc(degenerate: Sequence[float], normal: Sequence[float]) -> float:
    """P(a degenerate value > a normal value), ties counted half (the Mann–Whitney statistic)."""
    from scipy.stats import rankdata

    ranks = rankdata(np.r_[degenerate, normal])
    m, n = len(degenerate), len(normal)
    return float((ranks[:m].sum() - m * (m + 1) / 2) / (m * n))


def embed(texts: list[str], window: int | None) -> list[np.ndarray]:
    from agent_client import text

    model = text.load_model()
    ids = [text.token_ids(t, model)[:window] if window else text.token_ids(t, model) for t in texts]
    return text.embed_token_ids(ids, model)


def cached_embeddings(path: str | None, texts) -> dict[str, list[np.ndarray]]:
    """The embeddings a previous run kept in ``path``, if they are of these very texts."""
    if not path or not os.path.exists(path):
        return {}
    with open(path, "rb") as kept:
        stored = pickle.load(kept)  # a file this script wrote
    if stored.get("texts") != [t.text for t in texts]:
        return {}
    return {setting: stored[setting] for setting in ("full", f"first {WINDOW} tokens") if setting in stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--normal", type=int, default=800, help="normal texts (default 800)")
    parser.add_argument("--per-kind", type=int, default=100, help="texts of each degenerate kind (default 100)")
    parser.add_argument("--label-share", type=float, default=0.6, help="normal texts that become benign labels")
    parser.add_argument("--fit-share", type=float, default=0.3, help="degenerate texts that become anomalous labels")
    parser.add_argument("--delta", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="flk_bench_detection")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--embeddings-cache", metavar="FILE", help="reuse (or write) the token embeddings here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    started = time.monotonic()
    texts = corpus(args.normal, args.per_kind, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    role = []  # "label" / "fit" (labelled, never tested) or "test"
    for t in texts:
        share = args.label_share if t.kind == "normal" else args.fit_share
        role.append(("label" if t.kind == "normal" else "fit") if rng.random() < share else "test")
    clouds = cached_embeddings(args.embeddings_cache, texts)
    for setting, window in (("full", None), (f"first {WINDOW} tokens", WINDOW)):
        if setting in clouds:
            continue
        tick = time.monotonic()
        clouds[setting] = embed([t.text for t in texts], window)
        print(f"embedded {len(texts)} texts ({setting}) in {time.monotonic() - tick:.0f} s", file=sys.stderr)
    if args.embeddings_cache:
        with open(args.embeddings_cache, "wb") as out:
            pickle.dump({"texts": [t.text for t in texts], **clouds}, out)
    embedded = time.monotonic() - started

    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.db}"')
    work = Path(tempfile.mkdtemp(prefix="flk-detection-bench-"))
    os.environ.update({
        "DATABASE_URL": f"{args.pg}/{args.db}",
        "REDIS_URL": args.redis,
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DJANGO_SETTINGS_MODULE": "flk_site.settings",
        "FLK_ALLOW_UNSIGNED": "1",
        "TOKEN_RATE": "1000000",
        "FLK_VAR_DIR": str(work / "var"),
        "FLK_WAL_DIR": str(work / "wal"),
    })  # fmt: skip
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        logging.disable(logging.WARNING)
        results = {setting: run_setting(args, setting, texts, role, clouds[setting]) for setting in clouds}
        connection.close()
    finally:
        with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)
    report(args, texts, role, results, embedded, time.monotonic() - started)


def run_setting(args: argparse.Namespace, setting: str, texts, role, clouds) -> dict:
    from agent_client.builder import build_pcs
    from agent_client.codebook import default_codebook
    from calibration import services as calibration
    from calibration.scoring import ScoreFormula, score_signals
    from flk_site.testing import reset_config_memos
    from ingest.services import submit_pcs
    from policy.models import VerifyParams
    from tenancy.models import Tenant

    tenant = "text-full" if setting == "full" else "text-window"
    calibration.schedule_recalibration = lambda tenant: None  # one rebuild below, not one per label
    Tenant.objects.get_or_create(name=tenant, defaults={"sign_alg": "none"})
    VerifyParams.objects.filter(is_active=True).update(score_kind="fitted", delta=args.delta)
    reset_config_memos()
    book = default_codebook()
    pcs_list = [
        build_pcs(shard_id=tenant, epoch=k, seed=args.seed, embeddings=cloud, codebook=book)
        for k, cloud in enumerate(clouds)
    ]
    for r, pcs in zip(role, pcs_list, strict=True):
        if r == "label":
            calibration.record_label(tenant=tenant, pcs_id=pcs["pcs_id"], label="benign", provenance="audit",
                                     signals=score_signals(pcs))  # fmt: skip
        elif r == "fit":
            calibration.record_label(tenant=tenant, pcs_id=pcs["pcs_id"], label="anomalous",
                                     provenance="escalation", signals=score_signals(pcs))  # fmt: skip
    params = calibration.params_provider()()
    result = calibration.recalibrate_tenant(
        tenant, delta=params.delta, n_min=params.n_min, params_version=params.params_version, formula=params.formula
    )
    reset_config_memos()
    snapshot = calibration.current_snapshot(tenant)
    formula: ScoreFormula = snapshot.formula
    rows = []
    for t, r, pcs, cloud in zip(texts, role, pcs_list, clouds, strict=True):
        if r != "test":
            continue
        answer = submit_pcs(tenant, "application/json", json.dumps(pcs).encode())
        if answer.status not in (200, 202):
            raise RuntimeError(f"submit answered {answer.status}: {json.dumps(answer.body)[:300]}")
        conformal = answer.body.get("conformal") or {}
        terms = formula.terms(pcs)
        rows.append({
            "kind": t.kind, "tokens": len(cloud), "decision": answer.body["decision"],
            "score": conformal.get("score"), "D_hat": pcs["D_hat"], "coh_star": pcs["coh_star"], "r": pcs["r"],
            "D_hat term": terms[0], "coh_star term": terms[1], "r term": terms[2],
        })  # fmt: skip
    return {"n": result.n, "threshold": result.new_threshold, "formula": formula.as_dict(), "rows": rows}


def report(args, texts, role, results, embedded: float, seconds: float) -> None:
    from calibration.monitors import clopper_pearson

    tested = sum(r == "test" for r in role)
    print(
        f"detection: {len(texts)} generated texts ({args.normal} normal, {args.per_kind} of each of "
        f"{', '.join(KINDS)}; seed {args.seed}), all-MiniLM-L6-v2 on CPU; {tested} held out and submitted per "
        f"setting; score kind fitted, delta {args.delta}; {seconds:.0f} s in all ({embedded:.0f} s embedding)"
    )
    for setting, result in results.items():
        rows = result["rows"]
        normal = [x for x in rows if x["kind"] == "normal"]
        stopped = sum(x["decision"] != "accept" for x in normal)
        low, high = clopper_pearson(stopped, len(normal))
        n = result["n"]
        f = result["formula"]
        print()
        print(f"## {setting}: calibration n = {n}, threshold {result['threshold']:.3f}; fitted weights "
              f"D̂ {f['w_d']:.2f}, coh★ {f['w_coh']:.2f}, r {f['w_r']:.2f}; low-side shares D̂ "
              f"{f.get('lo_d', 0.5):.2f} coh★ {f.get('lo_coh', 0.5):.2f} r {f.get('lo_r', 0.5):.2f}; centre D̂ {f['c_d']:.3f} "
              f"coh★ {f['c_coh']:.3f} r {f['c_r']:.3f}")  # fmt: skip
        print(f"false escalation of {len(normal)} held-out normal texts: {stopped / len(normal):.3f} "
              f"[95 % CI {low:.3f}, {high:.3f}]; the guarantee's range [{args.delta - 1 / (n + 1):.3f}, "
              f"{args.delta:.3f}]")  # fmt: skip
        print()
        names = ["score", "D_hat", "coh_star", "r", "D_hat term", "coh_star term", "r term", "tokens"]
        print("| kind | texts | caught [95 % CI] | " + " | ".join(f"AUROC {name}" for name in names) + " |")
        print("|" + " --- |" * (3 + len(names)))
        groups = [(kind, [x for x in rows if x["kind"] == kind]) for kind in KINDS]
        groups.append(("all degenerate", [x for x in rows if x["kind"] != "normal"]))
        for kind, group in groups:
            caught = sum(x["decision"] != "accept" for x in group)
            clow, chigh = clopper_pearson(caught, len(group))
            aurocs = " | ".join(f"{auroc([x[name] for x in group], [x[name] for x in normal]):.3f}" for name in names)
            print(f"| {kind} | {len(group)} | {caught / len(group):.2f} [{clow:.2f}, {chigh:.2f}] | {aurocs} |")
        distinct = {name: len({x[name] for x in rows}) for name in ("D_hat", "coh_star", "r")}
        print(
            f"distinct values over the {len(rows)} held-out texts: "
            + ", ".join(f"{k} {v}" for k, v in distinct.items())
        )


if __name__ == "__main__":
    main()
