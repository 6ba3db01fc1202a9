"""`flk-agent build` makes the same PCS from the same data and seed, and `flk-agent submit` gets it accepted."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from agent_client import signals
from agent_client.builder import build_pcs
from agent_client.cli import CliError, load_points
from flk_site.testing import FLK_AGENT, make_pcs, pcs_files
from ingest.models import PcsRecord

UNSIGNED_WARNING = (
    "flk-agent: warning: the PCS is not signed (neither PCS_HMAC_KEY nor PCS_ED25519_SEED_B64 is set); a tenant "
    "that requires signatures refuses it with 401"
)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([FLK_AGENT, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})  # fmt: skip


def test_the_same_data_and_seed_give_a_bit_for_bit_identical_pcs(tmp_path):
    data = tmp_path / "cloud.npy"
    np.save(data, np.random.default_rng(12).standard_normal((1500, 24)))
    key = {"PCS_HMAC_KEY": "testkey"}
    first = run("build", "--in", str(data), "--shard-id", "s-1", "--epoch", "4", "--seed", "42", env=key)
    second = run("build", "--in", str(data), "--shard-id", "s-1", "--epoch", "4", "--seed", "42", env=key)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    pcs = json.loads(first.stdout)
    assert pcs["seed"] == 42 and pcs["scales"] == [2, 4, 8, 16, 32] and pcs["sig"]
    other_seed = run("build", "--in", str(data), "--shard-id", "s-1", "--epoch", "4", "--seed", "43", env=key)
    assert json.loads(other_seed.stdout)["v_star"] != pcs["v_star"]


def test_a_csv_with_a_header_reads_like_the_same_numbers_without_one(tmp_path):
    rows = np.random.default_rng(13).random((200, 3))
    with_header, without = tmp_path / "h.csv", tmp_path / "n.csv"
    with_header.write_text("x,y,z\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in rows) + "\n")
    without.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in rows) + "\n")
    a = run("build", "--in", str(with_header), "--shard-id", "s", "--epoch", "0", "--seed", "1")
    b = run("build", "--in", str(without), "--shard-id", "s", "--epoch", "0", "--seed", "1")
    assert a.returncode == 0 and a.stdout == b.stdout


def test_bad_input_is_one_clear_line_and_a_non_zero_exit(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n3,oops\n")
    result = run("build", "--in", str(bad), "--shard-id", "s", "--epoch", "0", "--seed", "1")
    assert result.returncode == 2
    assert result.stderr.startswith("flk-agent: error:") and result.stderr.count("\n") == 1
    good = tmp_path / "good.csv"
    good.write_text("1,2\n3,4\n5,7\n")
    negative = run("build", "--in", str(good), "--shard-id", "s", "--epoch", "-1", "--seed", "1")
    assert negative.returncode == 2 and "epoch" in negative.stderr and negative.stderr.count("\n") == 1
    header_only = tmp_path / "empty.csv"
    header_only.write_text("x,y\n")
    empty = run("build", "--in", str(header_only), "--shard-id", "s", "--epoch", "0", "--seed", "1")
    assert empty.returncode == 2 and "no data rows" in empty.stderr
    missing = run("submit", "--endpoint", "http://127.0.0.1:9", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_spreadsheet_and_other_csv_dialects_read_as_the_same_points(tmp_path):
    rows = np.random.default_rng(14).random((30, 3)).round(6)
    lines = [[repr(float(v)) for v in row] for row in rows]

    def written(name: str, text: str, encoding: str = "utf-8") -> str:
        (tmp_path / name).write_bytes(text.encode(encoding))
        return str(tmp_path / name)

    plain = written("plain.csv", "".join(",".join(cells) + "\n" for cells in lines))
    variants = [
        # a spreadsheet's "CSV UTF-8": a byte order mark, no header; the first row is data, not a header
        written("bom.csv", "".join(",".join(cells) + "\n" for cells in lines), "utf-8-sig"),
        written("crlf.csv", "x,y,z\r\n" + "".join(",".join(cells) + "\r\n" for cells in lines)),
        written("quoted.csv", '"x","y","z"\n' + "".join(",".join(f'"{c}"' for c in cells) + "\n" for cells in lines)),
        written("tabs.tsv", "".join("\t".join(cells) + "\n" for cells in lines)),
        written("semicolons.csv", "x;y;z\n" + "".join(";".join(cells) + "\n" for cells in lines)),
        written("spaces.txt", "".join("  ".join(cells) + "\n" for cells in lines) + "\n"),
    ]
    assert load_points(plain).tolist() == rows.tolist()
    for path in variants:
        assert load_points(path).tolist() == rows.tolist(), path


def test_an_npz_holding_one_array_reads_like_the_npy_and_one_holding_more_is_refused_by_name(tmp_path):
    points = np.random.default_rng(15).random((40, 3))
    np.save(tmp_path / "points.npy", points)
    np.savez_compressed(tmp_path / "one.npz", cloud=points)
    np.savez(tmp_path / "two.npz", cloud=points, labels=np.arange(40))
    assert load_points(str(tmp_path / "one.npz")).tolist() == load_points(str(tmp_path / "points.npy")).tolist()
    with pytest.raises(CliError, match=r"two.npz holds 2 arrays \(cloud, labels\); build reads one"):
        load_points(str(tmp_path / "two.npz"))


def test_complex_numbers_are_refused_not_cut_to_their_real_parts(tmp_path):
    np.save(tmp_path / "complex.npy", np.random.default_rng(16).standard_normal((20, 2)) + 1j)
    result = run("build", "--in", str(tmp_path / "complex.npy"), "--shard-id", "s", "--epoch", "0", "--seed", "1")
    assert result.returncode == 2 and result.stderr.count("\n") == 1  # no ComplexWarning beside it
    assert "must hold a 1-D or 2-D array of real numbers, got complex128" in result.stderr
    for compute in (lambda c: build_pcs(shard_id="s", epoch=0, points=c), signals.coherence, signals.dimension):
        with pytest.raises(ValueError, match="the point cloud holds complex numbers"):
            compute(np.ones((10, 2)) + 1j)


def test_a_cloud_whose_points_coincide_but_for_a_huge_coordinate_builds_a_fully_coherent_pcs(tmp_path):
    data = tmp_path / "ids.csv"
    data.write_text("id,x,y\n" + "1e30,1,2\n" * 20)
    result = run("build", "--in", str(data), "--shard-id", "s", "--epoch", "0", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["coh_star"] == 1.0
    far = tmp_path / "far.csv"
    far.write_text("1e308,-1e308\n-1e308,1e308\n0,0\n")
    refused = run("build", "--in", str(far), "--shard-id", "s", "--epoch", "0", "--seed", "1")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "too large to project" in refused.stderr


def test_a_negative_seed_and_an_unwritable_output_are_named_errors(tmp_path):
    data = tmp_path / "cloud.csv"
    data.write_text("1,2\n3,4\n5,7\n")
    negative = run("build", "--in", str(data), "--shard-id", "s", "--epoch", "0", "--seed", "-5")
    assert negative.returncode == 2 and "argument --seed: must be between 0 and" in negative.stderr
    into_a_directory = run("build", "--in", str(data), "--shard-id", "s", "--epoch", "0", "--seed", "1",
                           "--out", str(tmp_path))  # fmt: skip
    assert into_a_directory.returncode == 2
    assert into_a_directory.stderr == f"flk-agent: error: cannot write {tmp_path}: Is a directory\n"


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        (["submit", "--max-attempts", "0"], "argument --max-attempts: must be at least 1, got 0"),
        (["outbox", "drain", "--concurrency", "0"], "argument --concurrency: must be at least 1, got 0"),
        (["outbox", "drain", "--horizon", "-1"], "argument --horizon: must be 0 or more seconds, got -1"),
    ],
)
def test_counts_and_durations_out_of_range_are_refused_before_anything_is_sent(tmp_path, command, problem):
    pcs = tmp_path / "pcs.json"
    pcs.write_text(json.dumps(make_pcs()))
    files = [str(pcs)] if command[0] == "submit" else []
    result = run(*command, "--endpoint", "http://127.0.0.1:9", "--outbox", str(tmp_path / "outbox"), *files)
    assert result.returncode == 2 and problem in result.stderr
    assert not (tmp_path / "outbox").exists()


def test_every_subcommand_explains_itself():
    for command in (
        ["build"],
        ["submit"],
        ["outbox", "drain"],
        ["outbox", "status"],
        ["dlq", "list"],
        ["dlq", "retry"],
    ):
        result = run(*command, "--help")
        assert result.returncode == 0 and "usage: flk-agent" in result.stdout


@pytest.mark.slow
def test_built_pcs_files_are_submitted_and_accepted_by_the_service(gunicorn_service, tmp_path):
    service = gunicorn_service()
    files = []
    for i in range(3):
        data = tmp_path / f"work{i}.npy"
        np.save(data, np.random.default_rng(i).random((800, 3)))
        out = tmp_path / f"pcs{i}.json"
        built = run("build", "--in", str(data), "--shard-id", "cli", "--epoch", str(i), "--seed", "7",
                    "--out", str(out), env={"PCS_HMAC_KEY": "testkey"})  # fmt: skip
        assert built.returncode == 0, built.stderr
        files.append(str(out))
    submitted = run("submit", "--endpoint", service.url, "--outbox", str(tmp_path / "outbox"), *files)
    assert submitted.returncode == 0, submitted.stderr
    assert "delivered 3, dead letters 0" in submitted.stderr
    ids = [json.loads(Path(f).read_text())["pcs_id"] for f in files]
    assert sorted(PcsRecord.objects.filter(pcs_id__in=ids).values_list("decision", flat=True)) == ["accept"] * 3


@pytest.mark.parametrize("endpoint", ["htp:/x", "127.0.0.1:8000", "http://:8000", "ftp://host/"])
def test_an_endpoint_that_is_not_an_http_url_is_refused_before_anything_is_queued(tmp_path, endpoint):
    pcs = tmp_path / "pcs.json"
    pcs.write_text(json.dumps(make_pcs()))
    outbox = tmp_path / "outbox"
    result = run("submit", "--outbox", str(outbox), "--endpoint", endpoint, str(pcs))
    assert result.returncode == 2
    assert "the endpoint must be an http:// or https:// URL with a host" in result.stderr
    assert not outbox.exists()  # nothing queued, no eight tries ending in a dead letter


def test_an_outbox_path_that_is_a_file_is_named_in_the_error(tmp_path):
    not_a_directory = tmp_path / "outbox"
    not_a_directory.write_text("")
    result = run("outbox", "status", "--outbox", str(not_a_directory))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "the outbox must be a directory" in result.stderr and str(not_a_directory) in result.stderr


def test_exports_with_comments_blank_lines_trailing_separators_or_a_latin1_header_read_as_the_same_points(tmp_path):
    rows = np.random.default_rng(17).random((25, 3)).round(6)
    lines = [[repr(float(v)) for v in row] for row in rows]

    def written(name: str, data: bytes) -> str:
        (tmp_path / name).write_bytes(data)
        return str(tmp_path / name)

    body = "".join(",".join(cells) + "\n" for cells in lines)
    variants = [
        written("blank_first.csv", ("\n\n" + body).encode()),  # the separator is found in the first data line
        written("comments.csv", ("# exported 2026-11-24\n# by a tool\nx,y,z\n# metres\n" + body).encode()),
        written("trailing.csv", ("x,y,z,\n" + "".join(",".join(cells) + ",\n" for cells in lines)).encode()),
        written("trailing.tsv", "".join("\t".join(cells) + "\t\r\n" for cells in lines).encode()),
        written("latin1.csv", "größe,breite,höhe\n".encode("latin-1") + body.encode()),
        # a spreadsheet's "Unicode text": UTF-16 with its byte order mark, tab-separated, CRLF
        written(
            "unicode.txt", ("größe\tbreite\thöhe\r\n" + body.replace(",", "\t").replace("\n", "\r\n")).encode("utf-16")
        ),
    ]
    for path in variants:
        assert load_points(path).tolist() == rows.tolist(), path


def test_an_array_file_is_known_by_its_first_bytes_whatever_its_name(tmp_path):
    points = np.random.default_rng(18).random((40, 3))
    np.save(tmp_path / "points.npy", points)
    (tmp_path / "points.bin").write_bytes((tmp_path / "points.npy").read_bytes())
    np.savez(tmp_path / "archive.npz", cloud=points)
    (tmp_path / "archive.data").write_bytes((tmp_path / "archive.npz").read_bytes())
    assert load_points(str(tmp_path / "points.bin")).tolist() == points.tolist()
    assert load_points(str(tmp_path / "archive.data")).tolist() == points.tolist()
    (tmp_path / "cut.bin").write_bytes((tmp_path / "points.npy").read_bytes()[:100])
    with pytest.raises(CliError, match=r"cut.bin is not a readable .npy array"):
        load_points(str(tmp_path / "cut.bin"))
    (tmp_path / "binary.csv").write_bytes(b"\x00\x01\x02garbage\n")
    with pytest.raises(CliError, match=r"binary.csv is neither a .npy or .npz array nor a text CSV"):
        load_points(str(tmp_path / "binary.csv"))


def test_a_saved_row_index_is_left_out_with_a_note_and_a_named_column_of_counts_is_kept(tmp_path):
    rows = np.random.default_rng(19).random((30, 2)).round(6)
    body = "".join(f"{k},{x!r},{y!r}\n" for k, (x, y) in enumerate(rows.tolist()))
    indexed, named = tmp_path / "indexed.csv", tmp_path / "named.csv"
    indexed.write_text(",x,y\n" + body)  # what pandas' DataFrame.to_csv writes by default
    named.write_text("step,x,y\n" + body)
    notes: list[str] = []
    assert load_points(str(indexed), notes).tolist() == rows.tolist()
    assert notes == [f"{indexed}: the first column has no name and counts the rows (a saved row index): left out"]
    assert load_points(str(named)).shape == (30, 3)
    result = run("build", "--in", str(indexed), "--shard-id", "s", "--epoch", "0", "--seed", "1")
    plain = tmp_path / "plain.csv"
    plain.write_text("".join(f"{x!r},{y!r}\n" for x, y in rows.tolist()))
    assert result.returncode == 0 and result.stdout == run("build", "--in", str(plain), "--shard-id", "s",
                                                          "--epoch", "0", "--seed", "1").stdout  # fmt: skip
    assert result.stderr.splitlines() == [f"flk-agent: note: {notes[0]}", UNSIGNED_WARNING]


def test_a_short_row_or_a_cell_that_is_not_a_number_is_named_by_its_data_row(tmp_path):
    short, words = tmp_path / "short.csv", tmp_path / "words.csv"
    short.write_text("x,y,z\n1,2,3\n4,5,6\n7,8\n")
    words.write_text("# a comment\nx,y,z\n1,2,3\n4,five,6\n")
    with pytest.raises(CliError, match=r"^\S*short.csv: data row 3 has 2 fields, the rows before it 3$"):
        load_points(str(short))
    with pytest.raises(CliError, match=r"^\S*words.csv: data row 2, column 2: 'five' is not a number$"):
        load_points(str(words))


def test_numbers_with_a_decimal_comma_read_as_the_same_points(tmp_path):
    # Spreadsheets in many locales export "0,51;1,2": a semicolon (or a tab) between fields, a comma in numbers.
    rows = np.random.default_rng(16).random((25, 3)).round(6) * [1, -10, 1000]
    cells = [[repr(float(v)).replace(".", ",") for v in row] for row in rows]

    def written(name: str, text: str) -> str:
        (tmp_path / name).write_text(text)
        return str(tmp_path / name)

    variants = [
        written("semicolons.csv", "x;y;z\n" + "".join(";".join(row) + "\n" for row in cells)),
        written("no_header.csv", "".join(";".join(row) + "\n" for row in cells)),
        written("tabs.tsv", "x\ty\tz\n" + "".join("\t".join(row) + "\n" for row in cells)),
        written("quoted.csv", '"x";"y";"z"\n' + "".join(";".join(f'"{c}"' for c in row) + "\n" for row in cells)),
        written("trailing.csv", "".join(";".join(row) + ";\n" for row in cells)),
    ]
    for path in variants:
        assert load_points(path).tolist() == rows.tolist(), path
    # A point too is a decimal point, also after semicolons; a number with both is not guessed at.
    assert load_points(written("points.csv", "x;y\n0.5;1.25\n2;3\n")).tolist() == [[0.5, 1.25], [2, 3]]
    for text, cell in (("x;y\n1.234,5;2\n", "'1.234,5'"), ("x;y\n0,5;x\n", "'x'"), ("x;y\n0,5;1,2,3\n", "'1,2,3'")):
        with pytest.raises(CliError, match=f"data row 1, column [12]: {cell} is not a number$"):
            load_points(written("bad.csv", text))


def test_a_record_array_of_numeric_fields_reads_as_one_column_per_field(tmp_path):
    records = np.zeros(4, dtype=[("x", "<f8"), ("y", "<f4"), ("n", "<i8")])
    records["x"], records["y"], records["n"] = [0.5, 1, 2, 3], [1, 2, 3, 4], [7, 8, 9, 10]
    np.save(tmp_path / "records.npy", records)
    assert load_points(str(tmp_path / "records.npy")).tolist() == [[0.5, 1, 7], [1, 2, 8], [2, 3, 9], [3, 4, 10]]
    np.save(tmp_path / "text.npy", np.zeros(3, dtype=[("x", "<f8"), ("name", "U5")]))
    with pytest.raises(CliError, match="must hold a 1-D or 2-D array of real numbers"):
        load_points(str(tmp_path / "text.npy"))


def test_a_value_that_is_not_finite_is_named_by_its_row_and_column(tmp_path):
    (tmp_path / "missing.csv").write_text("x,y\n1,2\n3,NaN\n")
    with pytest.raises(CliError, match=r"missing.csv: data row 2, column 2: nan is not a finite number$"):
        load_points(str(tmp_path / "missing.csv"))
    cloud = np.ones((5, 3))
    cloud[3, 2] = -np.inf
    np.save(tmp_path / "inf.npy", cloud)
    with pytest.raises(CliError, match=r"inf.npy: row 4, column 3: -inf is not a finite number$"):
        load_points(str(tmp_path / "inf.npy"))
    built = run("build", "--in", str(tmp_path / "missing.csv"), "--shard-id", "s", "--epoch", "1", "--seed", "1")
    assert built.returncode == 2 and built.stderr.strip().endswith("data row 2, column 2: nan is not a finite number")


def test_a_sep_line_names_the_separator_as_excel_writes_it(tmp_path):
    cases = {
        "sep=;\nx;y\n0,5;1,25\n2;3\n": [[0.5, 1.25], [2, 3]],
        "sep=;\n0.5;1.25\n2;3\n": [[0.5, 1.25], [2, 3]],
        "sep=,\r\nx,y\r\n1,2\r\n": [[1, 2]],
        "sep=\t\nx\ty\n1,5\t2\n": [[1.5, 2]],
        "sep=|\nx|y\n1|2\n3|4\n": [[1, 2], [3, 4]],
    }
    for k, (text, points) in enumerate(cases.items()):
        (tmp_path / f"sep{k}.csv").write_text(text)
        assert load_points(str(tmp_path / f"sep{k}.csv")).tolist() == points, text


def test_submit_sends_several_pcs_at_once_and_names_every_dead_letter_once(scripted, tmp_path):
    files = pcs_files(tmp_path, 6, "parallel")
    server = scripted([], gather=3)
    sent = run("submit", "--concurrency", "3", "--endpoint", server.url, "--outbox", str(tmp_path / "ok"), *files)
    assert sent.returncode == 0 and "delivered 6, dead letters 0" in sent.stderr, sent.stderr
    assert server.most_in_flight == 3  # the barrier held each POST until three were in flight

    refusing = scripted([(401, {})] * 6)
    outbox = tmp_path / "refused"
    refused = run("submit", "--endpoint", refusing.url, "--outbox", str(outbox), *files)
    assert refused.returncode == 1 and "delivered 0, dead letters 6" in refused.stderr
    ids = sorted(json.loads(Path(f).read_text())["pcs_id"] for f in files)
    lines = [line.strip("\r ") for line in refused.stderr.replace("\r", "\n").splitlines()]
    named = sorted(line.split()[2].rstrip(":") for line in lines if line.startswith("dead letter "))
    assert named == ids  # one line for each, naming the server's answer, and no other line naming it
    assert all(sum(pcs_id in line for line in lines) == 1 for pcs_id in ids)
    assert all("HTTP 401" in line for line in lines if line.startswith("dead letter "))
    listed = run("dlq", "list", "--outbox", str(outbox))
    assert sorted(json.loads(line)["pcs_id"] for line in listed.stdout.splitlines()) == ids
