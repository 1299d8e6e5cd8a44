"""`scan --reference` spelled with many ranges (issue 20, case 12): parsed in memory bounded by
the vocabulary, whatever the argument's length; a token id with thousands of digits is one
line."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from helpers import assert_one_line_error, cli

import tokneigh
from tokneigh.analyses.scan import parse_reference

SHARED_CACHE = True


def expected_ids(spec: str) -> list[int]:
    """The ids a spec names, by brute force over a set (the independent reference)."""
    ids: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.strip().partition("-")
        ids.update(range(int(low), int(high or low) + 1))
    return sorted(ids)


def test_overlapping_ranges_cost_what_the_vocabulary_holds():
    """300 copies of a 30,000-id range: 9 million ids as a list, 30,000 as a set."""
    spec = ",".join(["0-29999"] * 300)
    tracemalloc.start()
    try:
        ids = parse_reference(spec, 30_522)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ids == list(range(30_000))
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MB for a 30,000-id reference"


def test_a_mixed_spec_names_the_ids_a_set_would():
    rng = np.random.default_rng(12)
    parts = []
    for _ in range(400):
        low = int(rng.integers(0, 5000))
        parts.append(f"{low}-{low + int(rng.integers(0, 300))}" if rng.random() < 0.6 else str(low))
    spec = " , ".join(parts)
    assert parse_reference(spec, 5400) == expected_ids(spec)


@pytest.mark.parametrize("spec, fragment", [
    ("9" * 5000, "beyond"),  # int() of 5,000 digits is refused by Python itself
    ("0-" + "9" * 5000, "beyond"),
    ("0-12345678901234567890123", "beyond"),
])
def test_a_token_id_with_too_many_digits_is_one_line(spec, fragment):
    from tokneigh.errors import UsageError

    for vocab in (None, 30_522):
        with pytest.raises(UsageError, match=fragment) as caught:
            parse_reference(spec, vocab)
        assert len(str(caught.value)) < 200  # the argument is not echoed whole


def test_a_long_reference_through_the_cli(llama_dir, module_cache):
    emb = tokneigh.load(str(llama_dir), cache_dir=module_cache)
    n = emb.vocab_size
    spec = ",".join(f"{i % (n - 40)}-{i % (n - 40) + 30}" for i in range(0, 8000, 7))
    assert len(spec) > 8000
    result = cli("scan", "--top", "3", "--reference", spec, "-f", "json", "-m", str(llama_dir))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["reference"] == {"kind": "ids", "ids": expected_ids(spec)}
    # beyond the vocabulary, or misspelt at the end: one line that does not echo 8 KB
    for bad, fragment in ((f",{n}-{n + 5}", f"reference token id {n} is outside"),
                          (",abc", "'abc' is neither a token id nor a range")):
        result = cli("scan", "--reference", spec + bad, "-m", str(llama_dir))
        assert_one_line_error(result, 2, fragment)
        assert len(result.stderr) < 400, len(result.stderr)
