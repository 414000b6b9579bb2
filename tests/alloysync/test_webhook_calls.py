"""What a workflow's call names: every body shape a template can produce, and what is refused."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alloysync.webhook_calls import MAX_ITEMS_PER_CALL, WebhookCallError, item_ids_from_call

A = "65f0c0ffee0000000000000a"
B = "65f0c0ffee0000000000000b"


def ids(body: bytes | str = b"", query: list[tuple[str, str]] | None = None) -> list[str]:
    return item_ids_from_call(body.encode() if isinstance(body, str) else body, query or [])


@pytest.mark.parametrize(
    "body",
    [
        {"itemId": A},
        {"itemIds": [A, B]},
        {"item": {"itemId": A, "designCode": "designs_x", "attributes": []}},
        {"ItemID": A},
        {"item_id": A},
        {"item-ids": f"{A}, {B}"},
        {"item": A},
        [A, B],
        [{"itemId": A}, {"itemId": B}],
        A,
        {"itemId": f"  {A}\n"},
        {"itemIds": [A, A, B, A]},
    ],
)
def test_every_json_shape_a_workflow_can_template_names_its_items(body):
    named = ids(json.dumps(body))
    assert named == ([A, B] if B in json.dumps(body) else [A])


def test_whole_alloy_item_as_the_body_names_its_own_id():
    item = {"itemId": A, "designCode": "designs_x", "collection": "Live", "attributes": [{"attributeCode": "a"}]}
    assert ids(json.dumps(item)) == [A]


@pytest.mark.parametrize(
    "body",
    [f"itemId={A}", f"itemId={A}&itemId={B}", f"itemIds={A},{B}", f"other=1&itemId={A}", f"{A}", f" \n{A}\n"],
)
def test_forms_and_a_plain_id_are_read_whatever_the_content_type_said(body):
    named = ids(body)
    assert named == ([A, B] if B in body else [A])


def test_the_query_string_names_items_and_may_repeat_and_adds_to_the_body():
    assert ids(b"", [("itemId", A), ("itemId", B)]) == [A, B]
    assert ids(json.dumps({"itemId": B}), [("itemId", A)]) == [A, B]
    assert ids(b"", [("unrelated", "x")]) == []


def test_a_json_number_is_an_id_as_text():
    assert ids("12345") == ["12345"]
    assert ids('{"itemId": 42}') == ["42"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \n",
        b"{}",
        b'{"itemId": ""}',
        b'{"itemId": null}',
        b'{"other": "x"}',
        b"[]",
        b"null",
        b'{"itemIds": []}',
    ],
)
def test_a_call_naming_nothing_names_nothing(body):
    assert ids(body) == []


def test_a_utf8_byte_order_mark_is_tolerated():
    assert ids(b"\xef\xbb\xbf" + json.dumps({"itemId": A}).encode()) == [A]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"itemId": true}', "an item id must be text, not a boolean"),
        ('{"itemId": 1.5}', "an item id must be text, not a fractional number"),
        ('{"itemId": {"x": 1}}', "an item id must be text, not an object"),
        ('{"item": [1]}', "an item id must be text, not a list"),
        ('{"itemId": "' + "a" * 65 + '"}', "is longer than the 64 characters a job can hold"),
        ('{"itemId": "a\\u0000b"}', "holds a NUL character"),
        ('{"itemId": "a\\ud800"}', "unpaired surrogate"),
        ('{"itemId": "a\\u0007"}', "unprintable"),
        ("not an id", "neither JSON, a form nor one item id"),
        ('{"itemId": "{{item.itemId}}"}', "not one word of letters, digits"),
        ('{"itemId": "a b"}', "not one word of letters, digits"),
        ('{"itemId": "../../api/session"}', "not one word of letters, digits"),
        ('{"itemId": "x"', "the body's JSON cannot be read: Expecting"),
    ],
)
def test_what_cannot_be_an_item_id_is_refused_naming_the_problem(body, message):
    with pytest.raises(WebhookCallError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ids(body)


def test_a_body_that_is_not_utf8_is_refused():
    with pytest.raises(WebhookCallError, match="not UTF-8"):
        ids(b'{"itemId": "\xff"}')


@pytest.mark.parametrize("depth", [5_000, 30_000])
def test_json_nested_past_the_parsers_limit_is_refused_not_raised(depth):
    with pytest.raises(WebhookCallError, match="nested too deeply"):
        ids(b"[" * depth + b"]" * depth)


@pytest.mark.parametrize("depth", [500, 900, 990, 2000])
def test_objects_nested_near_the_limit_name_their_id_or_are_refused_never_raise(depth):
    try:
        assert ids(b'{"item":' * depth + b'"x"' + b"}" * depth) == ["x"]
    except WebhookCallError as exc:
        assert "nested too deeply" in str(exc)


def test_a_body_nested_within_the_limit_still_names_its_id():
    assert ids(b'{"item":' * 50 + json.dumps({"itemId": A}).encode() + b"}" * 50) == [A]


def test_more_items_than_a_call_may_name_are_refused_whole():
    assert len(ids(json.dumps({"itemIds": [f"{n:024x}" for n in range(MAX_ITEMS_PER_CALL)]}))) == MAX_ITEMS_PER_CALL
    with pytest.raises(WebhookCallError, match=f"names {MAX_ITEMS_PER_CALL + 1} items; at most {MAX_ITEMS_PER_CALL}"):
        ids(json.dumps({"itemIds": [f"{n:024x}" for n in range(MAX_ITEMS_PER_CALL + 1)]}))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)
item_keys = st.sampled_from(["itemId", "itemIds", "item", "ITEM_ID", "x"])


@given(st.one_of(json_values, st.dictionaries(item_keys, json_values, max_size=4)))
def test_any_json_body_names_valid_ids_or_is_refused_with_a_message(value):
    _names_ids_or_refuses(json.dumps(value).encode())


@given(st.binary(max_size=300), st.lists(st.tuples(item_keys, st.text(max_size=70)), max_size=3))
def test_any_bytes_and_query_name_valid_ids_or_are_refused_with_a_message(body, query):
    _names_ids_or_refuses(body, query)


def _names_ids_or_refuses(body: bytes, query: list[tuple[str, str]] | None = None) -> None:
    try:
        named = item_ids_from_call(body, query or [])
    except WebhookCallError as exc:
        assert str(exc)
        return
    assert len(named) == len(set(named))
    for item_id in named:
        assert item_id == item_id.strip() and 0 < len(item_id) <= 64 and item_id.isprintable()


def test_a_repeated_key_names_every_id_it_was_given():
    assert item_ids_from_call(b'{"itemId": "aaaaaaaaaaaaaaaaaaaaaaaa", "itemId": "bbbbbbbbbbbbbbbbbbbbbbbb"}', []) == [
        "aaaaaaaaaaaaaaaaaaaaaaaa",
        "bbbbbbbbbbbbbbbbbbbbbbbb",
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"itemId": ' + b"1" * 5000 + b"}", "the body's JSON cannot be read: Exceeds the limit"),
        (b'{"itemId": "abc",', "the body's JSON cannot be read: Expecting property name"),
        (b"[1, 2", "the body's JSON cannot be read"),
    ],
)
def test_a_body_meant_as_json_that_cannot_be_read_says_so(body, expected):
    with pytest.raises(WebhookCallError) as refused:
        item_ids_from_call(body, [])
    assert str(refused.value).startswith(expected)
