"""Hypothesis strategies for values job code may return or raise and databases refuse: text with NUL
and unpaired surrogates, nesting to 1,500 levels, NaN and infinities, integers of thousands of digits,
objects JSON has no type for, BaseExceptions."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.scheduler import hostile_jobs

HOSTILE_TEXT = st.text(st.one_of(st.characters(), st.sampled_from(["\x00", "\ud800", "\udfff", "\n"])), max_size=30)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    # Built by map: hypothesis reprs its strategies, and repr() of an int over 4,300 digits raises.
    st.sampled_from([19, 4299, 4300, 5000]).map(lambda digits: (-1) ** digits * 10**digits),
    st.floats(),  # NaN and both infinities included
    HOSTILE_TEXT,
    st.binary(max_size=8),
    st.decimals(),
    st.datetimes(),
    st.frozensets(st.integers(), max_size=3),
    st.builds(hostile_jobs.BadRepr),
)
KEYS = st.one_of(HOSTILE_TEXT, st.integers(), st.floats(), st.none(), st.booleans(), st.tuples(st.integers()))
VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.tuples(children, children), st.dictionaries(KEYS, children, max_size=4)
    ),
    max_leaves=25,
)
DEEP = st.integers(1, 1500).map(hostile_jobs.nested_lists)
EXCEPTIONS = st.one_of(
    st.builds(RuntimeError, st.one_of(VALUES, DEEP)),
    st.builds(ValueError, HOSTILE_TEXT, HOSTILE_TEXT),
    st.builds(hostile_jobs.Meltdown, VALUES),
    st.builds(GeneratorExit),
    st.builds(SystemExit, st.one_of(st.integers(), HOSTILE_TEXT, st.none())),
    st.builds(KeyboardInterrupt),
    st.sampled_from([ValueError, SystemExit]).map(hostile_jobs.UnprintableError),
)
