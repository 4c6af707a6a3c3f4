"""Counts in command output and log lines read as English: one of a thing is singular."""

import pytest

from aggregator.plural import counted


@pytest.mark.parametrize(
    ("count", "noun", "expected"),
    [
        (0, "source", "0 sources"),
        (1, "source", "1 source"),
        (2, "file", "2 files"),
        (1, "category", "1 category"),
        (3, "category", "3 categories"),
        (2, "day", "2 days"),  # a vowel before the y: just an s
        (1, "forked worker", "1 forked worker"),
        (4, "forked worker", "4 forked workers"),
    ],
)
def test_a_count_of_one_is_singular_and_others_plural(count, noun, expected):
    assert counted(count, noun) == expected
