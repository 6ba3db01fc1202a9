"""Every malformed PCS is refused with the offending field named; valid ones pass unchanged."""

from __future__ import annotations

import json

import pytest

from agent_client.canonical import pcs_id_for
from agent_client.schema import MAX_NESTING, NON_FIELD, PcsInvalid, parse_pcs
from flk_site.testing import make_pcs


def errors_of(pcs_or_body) -> dict:
    raw = pcs_or_body if isinstance(pcs_or_body, (bytes, str)) else json.dumps(pcs_or_body)
    with pytest.raises(PcsInvalid) as info:
        parse_pcs(raw)
    return info.value.errors


def with_id(pcs: dict) -> dict:
    """Recompute pcs_id after changing merkle_root, epoch or shard_id, so only the change is tested."""
    pcs["pcs_id"] = pcs_id_for(pcs["merkle_root"], pcs["epoch"], pcs["shard_id"])
    return pcs


def test_a_valid_pcs_parses():
    pcs = make_pcs()
    assert parse_pcs(json.dumps(pcs))["pcs_id"] == pcs["pcs_id"]


def test_unknown_fields_are_ignored():
    pcs = make_pcs(extra_field={"anything": [1, 2]})
    assert parse_pcs(json.dumps(pcs))["pcs_id"] == pcs["pcs_id"]


@pytest.mark.parametrize("depth", [MAX_NESTING, MAX_NESTING + 1, 990, 100_000])
@pytest.mark.parametrize("opener, closer", [("[", "]"), ('{"a":', "}")])
def test_objects_and_arrays_nested_beyond_the_limit_are_refused_whatever_the_depth(depth, opener, closer):
    nested = opener * (depth - 1) + "1" + closer * (depth - 1)
    body = json.dumps(make_pcs())[:-1] + f', "extra": {nested}}}'  # the PCS itself is the first level
    if depth <= MAX_NESTING:
        assert parse_pcs(body)["extra"]
        return
    with pytest.raises(PcsInvalid) as refused:
        parse_pcs(body.encode())
    assert refused.value.errors == {NON_FIELD: [f"body nests objects and arrays more than {MAX_NESTING} levels deep"]}


def test_many_brackets_side_by_side_are_not_nesting():
    assert parse_pcs(json.dumps(make_pcs(extra=[[1]] * 100, note="[{" * 50)))["extra"] == [[1]] * 100


@pytest.mark.parametrize(
    "field",
    [
        "pcs_id",
        "schema",
        "version",
        "shard_id",
        "epoch",
        "scales",
        "N_j",
        "coh_star",
        "D_hat",
        "r",
        "regime",
        "budget",
        "merkle_root",
    ],
)
def test_each_missing_required_field_is_named(field):
    pcs = make_pcs()
    del pcs[field]
    assert errors_of(pcs)[field] == ["This field is required."]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epoch", "7"),
        ("epoch", 1.5),
        ("D_hat", "0.8"),
        ("coh_star", None),
        ("r", []),
        ("scales", "2,4"),
        ("N_j", [3, 5]),
        ("shard_id", 17),
        ("regime", 1),
        ("attempt", "1"),
        ("ft", "ok"),
        ("sig", 12),
    ],
)
def test_mistyped_fields_are_named(field, value):
    assert field in errors_of(make_pcs() | {field: value})


@pytest.mark.parametrize("field", ["D_hat", "coh_star", "r", "budget", "epoch"])
def test_booleans_are_not_numbers(field):
    assert field in errors_of(make_pcs() | {field: True})


def test_a_pcs_id_that_is_not_the_hash_of_root_epoch_shard_is_refused():
    pcs = make_pcs()
    pcs["epoch"] += 1
    assert errors_of(pcs)["pcs_id"] == ["does not equal sha256(merkle_root|epoch|shard_id)"]


def test_wrong_schema_name_and_unknown_major_version():
    errors = errors_of(make_pcs(schema="other", version="1.0"))
    assert "schema" in errors
    assert "unknown major version" in errors["version"][0]


@pytest.mark.parametrize("version", ["0.1.3", "0.2.0", "0.2.17"])
def test_a_patch_version_speaks_its_major_and_minor(version):
    assert parse_pcs(json.dumps(make_pcs(version=version)))["version"] == version


@pytest.mark.parametrize("version", ["0.0", "0.3", "0.7.2"])
def test_a_minor_version_this_server_does_not_speak_is_refused(version):
    # Read as 0.1, a captured 0.1 PCS relabelled "0.7" would still verify and pass a tenant's 0.2 minimum.
    assert errors_of(make_pcs(version=version))["version"] == [
        f"unsupported version {version}; this server speaks 0.1 and 0.2"
    ]


def test_non_hex_merkle_root():
    pcs = make_pcs()
    pcs["merkle_root"] = "z" * 64
    assert "merkle_root" in errors_of(pcs)


@pytest.mark.parametrize(("scales", "problem"), [([2, 0, 8], "positive"), ([2, -4], "positive"), ([2, 2, 8], "repeat")])
def test_non_positive_or_duplicate_scales(scales, problem):
    pcs = make_pcs(scales=scales, N_j={str(s): 3 for s in scales})
    assert problem in errors_of(pcs)["scales"][0]


def test_more_than_64_scales():
    scales = list(range(1, 66))
    assert "scales" in errors_of(make_pcs(scales=scales, N_j={str(s): 1 for s in scales}))


def test_n_j_keys_must_match_the_scales():
    errors = errors_of(make_pcs(N_j={"2": 3, "4": 5, "8": 9, "16": 17, "64": 31}))
    assert "missing keys 32" in errors["N_j"][0] and "unexpected keys 64" in errors["N_j"][0]


@pytest.mark.parametrize("key", ["\u00b2", "\u0663", "\uff18", "1\u00b2"])
def test_n_j_keys_with_digits_that_are_not_ascii_are_named_as_unexpected(key):
    # "²".isdigit() is true and int("²") raises: found by the API fuzzing as a 500 of /v1/pcs/submit.
    errors = errors_of(make_pcs(N_j={"2": 3, "4": 5, "8": 9, "16": 17, "32": 31, key: 1}))
    assert errors["N_j"] == [f"keys must be the scales written as strings: unexpected keys {key}"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", '[1, {"a": NaN}]'])
def test_under_0_1_a_nan_or_infinity_literal_in_an_unsigned_field_is_named(literal):
    # Passed through as the parser's placeholder, it made the store fail with a 500 (found by the hostile corpus).
    raw = json.dumps(make_pcs(version="0.1"))[:-1] + f', "note": {literal}}}'
    assert errors_of(raw) == {"note": ["holds NaN or Infinity (at any depth), which JSON has no value for"]}


@pytest.mark.parametrize("value", [0, -3, 2.5, "9", True])
def test_n_j_values_must_be_positive_integers(value):
    assert "N_j" in errors_of(make_pcs(N_j={"2": 3, "4": value, "8": 9, "16": 17, "32": 31}))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused_per_field(literal):
    raw = json.dumps(make_pcs()).replace('"D_hat": 0.857365188', f'"D_hat": {literal}')
    assert errors_of(raw)["D_hat"] == ["must be a finite number"]


@pytest.mark.parametrize("field", ["r", "budget"])
@pytest.mark.parametrize("value", [-0.01, 1.01])
def test_r_and_budget_outside_the_unit_interval(field, value):
    assert errors_of(make_pcs() | {field: value})[field] == ["must be within [0, 1]"]


def test_unknown_regime():
    assert "regime" in errors_of(make_pcs(regime="slippery"))


@pytest.mark.parametrize("shard_id", ["", "x" * 129, "tab\there", "naïve"])
def test_shard_id_must_be_1_to_128_printable_ascii(shard_id):
    pcs = with_id(make_pcs(shard_id="placeholder") | {"shard_id": shard_id})
    assert "shard_id" in errors_of(pcs)


def test_shard_id_of_128_printable_characters_is_fine():
    assert parse_pcs(json.dumps(with_id(make_pcs() | {"shard_id": "~" * 128})))


def test_negative_epoch():
    assert errors_of(with_id(make_pcs() | {"epoch": -1}))["epoch"] == ["must be ≥ 0"]


def test_duplicate_json_keys_are_refused():
    raw = json.dumps(make_pcs())[:-1] + ', "r": 0.1}'
    assert "duplicate JSON key 'r'" in errors_of(raw)[NON_FIELD][0]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b"[1, 2]", b'"a string"', b"null"])
def test_invalid_json_or_a_non_object_body(raw):
    assert NON_FIELD in errors_of(raw)


def test_all_problems_are_reported_at_once():
    errors = errors_of(make_pcs(r=2.0, budget=-1.0, regime="x", schema="y"))
    assert {"r", "budget", "regime", "schema"} <= errors.keys()


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        (r'"note": "a\u0000b"', "note"),
        (r'"note": ["ok", {"deep": "\ud800"}]', "note[1].deep"),
        (r'"no\u0000te": 1', r"no\x00te"),
        (r'"\udfff": 1', r"\udfff"),
    ],
)
def test_strings_no_database_can_store_are_a_field_error(extra, where):
    body = json.dumps(make_pcs())[:-1] + ", " + extra + "}"
    with pytest.raises(PcsInvalid) as refused:
        parse_pcs(body.encode())
    (message,) = refused.value.errors[NON_FIELD]
    assert message.startswith(f"{where}: a string holds U+0000 or an unpaired surrogate")
    json.dumps(refused.value.errors, ensure_ascii=False).encode("utf-8")  # the answer itself can be sent


def test_escaped_and_non_ascii_text_that_is_valid_passes():
    pcs = dict(make_pcs(), note="caf\u00e9 \u2603 \U0001f600")
    assert parse_pcs(json.dumps(pcs).encode())["note"] == "café ☃ 😀"
    assert parse_pcs(json.dumps(pcs, ensure_ascii=False).encode("utf-8"))["note"] == "café ☃ 😀"


@pytest.mark.parametrize(
    "sent_at",
    [
        "2026-11-24T10:00:00Z",
        "2026-11-24t10:00:00.123456789-05:30",
        "2024-02-29T00:00:00+00:00",
        "2026-12-31T23:59:60Z",
    ],
)
def test_an_rfc3339_sent_at_is_accepted(sent_at):
    assert parse_pcs(json.dumps(make_pcs(sent_at=sent_at)))["sent_at"] == sent_at


@pytest.mark.parametrize(
    "sent_at",
    [
        "yesterday",
        "2026-11-24",
        "2026-11-24T10:00:00",
        "2026-13-01T00:00:00Z",
        "2026-02-29T00:00:00Z",
        "2026-11-24T24:00:00Z",
        "2026-11-24T10:00:00+25:00",
        "٢٠٢٦-11-24T10:00:00Z",
        1764000000,
    ],
)
def test_a_sent_at_that_is_not_an_rfc3339_instant_is_named(sent_at):
    with pytest.raises(PcsInvalid) as refused:
        parse_pcs(json.dumps(make_pcs(sent_at=sent_at)))
    assert refused.value.errors == {"sent_at": ["must be an RFC 3339 timestamp string, e.g. 2026-11-24T10:00:00Z"]}
