"""`python -m bench` is documented as running everything: its argument handling must allow that."""

import pytest

from bench.__main__ import ALL, parse_args


def test_no_arguments_runs_every_benchmark_and_names_pick_some():
    assert parse_args([]).which == list(ALL)
    assert parse_args(["features", "startup"]).which == ["features", "startup"]


def test_an_unknown_benchmark_is_refused():
    with pytest.raises(SystemExit):
        parse_args(["nope"])
