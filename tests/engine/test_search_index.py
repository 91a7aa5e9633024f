"""search_index (pure parts): the masks writes emit and searches read, and the synthetic
keys: a search's points and prefix range contain exactly the keys of the writes it must
see, under the filter values it uses."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from reactive_store.engine.search_index import (
    emitted_masks,
    read_mask,
    term_key,
    term_prefix_interval,
)
from reactive_store.keys import encode_tuple


def test_masks_up_to_three_fields_are_every_subset() -> None:
    assert emitted_masks(0) == [()]
    assert emitted_masks(2) == [(), (0,), (1,), (0, 1)]
    assert len(emitted_masks(3)) == 8
    for used in itertools.chain.from_iterable(
            itertools.combinations(range(3), r) for r in range(4)):
        assert read_mask(3, set(used)) == used  # exact for every combination of eq()s


def test_masks_past_three_fields_are_prefixes() -> None:
    assert emitted_masks(5) == [(), (0,), (0, 1), (0, 1, 2), (0, 1, 2, 3), (0, 1, 2, 3, 4)]
    assert read_mask(5, {0, 1, 3}) == (0, 1)  # sound: ignores the filter on field 3
    assert read_mask(5, {1, 2}) == ()
    for used in [{0, 1, 3}, {1, 2}, {0, 1, 2, 3, 4}]:
        assert read_mask(5, used) in emitted_masks(5)


words = st.text(alphabet="abcdéz東", min_size=1, max_size=6)


@given(words, words, st.sampled_from(["s1", "s2"]), st.sampled_from(["s1", "s2"]))
def test_prefix_interval_holds_exactly_the_terms_it_extends(
        prefix: str, term: str, wanted: str, written: str) -> None:
    base = encode_tuple([wanted])
    key = encode_tuple([written]) + encode_tuple([term])
    assert term_key(encode_tuple([written]), term) == key
    inside = term_prefix_interval(base, prefix).contains(key)
    assert inside == (term.startswith(prefix) and wanted == written)
