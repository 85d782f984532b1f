from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudcc.ivr.exceptions import ExpressionEvaluationError, ExpressionSyntaxError
from cloudcc.ivr.expressions import evaluate, parse_expression, parse_template

SCOPE = {
    "account": "12345",
    "balance": 12.5,
    "tier": "gold",
    "tries": 2,
    "tags": ["vip", "chinese"],
    "crm": {"name": "Li Lei", "orders": [{"id": 7}]},
    "missing": None,
    "contact": {"caller": "+8613800138000", "vip": True},
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("8 / 2", 4),
        ("7 % 3", 1),
        ("-tries + 5", 3),
        ("balance >= 10 and tier == 'gold'", True),
        ("balance < 10 or not contact.vip", False),
        ("tier in ['gold', 'platinum']", True),
        ("'vip' in tags", True),
        ("'bronze' not in tags", True),
        ("'86' in contact.caller", True),
        ("starts_with(contact.caller, '+86')", True),
        ("ends_with(account, '45')", True),
        ("len(account) == 5", True),
        ("upper(tier) + '!'", "GOLD!"),
        ("lower('ABC')", "abc"),
        ("trim('  x ')", "x"),
        ("substr(account, 1, 2)", "23"),
        ("replace(account, '3', '-')", "12-45"),
        ("contains(tags, 'vip')", True),
        ("crm.name", "Li Lei"),
        ("crm.orders[0].id", 7),
        ("crm['name']", "Li Lei"),
        ("crm.nothing", None),
        ("missing == null", True),
        ("coalesce(missing, 'default')", "default"),
        ("is_empty(missing)", True),
        ("int('42') + 1", 43),
        ("number('2.5') * 2", 5.0),
        ("round(balance)", 12),
        ("round(2.345, 2)", 2.35),
        ("abs(-3)", 3),
        ("min(3, 1, 2)", 1),
        ("max([4, 9, 2])", 9),
        ("str(balance)", "12.5"),
        ("digits('tel: 555-0100')", "5550100"),
        ("1 == true", False),
        ("1 == 1.0", True),
        ('"say \\"hi\\""', 'say "hi"'),
    ],
)
def test_expression_computes_expected_value(source: str, expected: object) -> None:
    assert evaluate(source, SCOPE) == expected


@pytest.mark.parametrize(
    "source",
    ["", "1 +", "(1", "a ==", "1 2", "'open", "a < b < c", "foo(1)", "len()", "a.1", "@", "[1,"],
)
def test_malformed_expression_raises_syntax_error(source: str) -> None:
    with pytest.raises(ExpressionSyntaxError):
        parse_expression(source)


@pytest.mark.parametrize(
    "source",
    ["1 / 0", "'a' + 1", "nobody", "tier < 3", "len(5)", "-tier", "int('x')", "tags.name"],
)
def test_failing_evaluation_raises_evaluation_error(source: str) -> None:
    with pytest.raises(ExpressionEvaluationError):
        evaluate(source, SCOPE)


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(ExpressionSyntaxError, match="nested too deeply"):
        parse_expression("(" * 500 + "1" + ")" * 500)
    with pytest.raises(ExpressionSyntaxError):
        parse_expression(" + ".join(["1"] * 600))


def test_syntax_error_reports_position() -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        parse_expression("balance > 10 and ) ")
    assert info.value.position == 17


def test_expression_lists_the_root_names_it_reads() -> None:
    assert parse_expression("crm.name == tier and contact.vip").names == {"crm", "tier", "contact"}


def test_template_fills_holes_and_keeps_literal_braces() -> None:
    t = parse_template("Hello {crm.name}, your balance is {balance * 2} {{dollars}}")
    assert t.render(SCOPE) == "Hello Li Lei, your balance is 25 {dollars}"
    assert t.names == {"crm", "balance"}


@pytest.mark.parametrize("source", ["{", "a }", "{1 +}", "{}"])
def test_bad_template_raises_syntax_error(source: str) -> None:
    with pytest.raises(ExpressionSyntaxError):
        parse_template(source)


_WORDS = ["and", "or", "not", "in", "len(", "substr(", "true", "null", "tags", "crm", "1e5"]
_ALPHABET = st.sampled_from(list("abcxyz0123456789 .,()[]+-*/%<>=!'\"_\\") + _WORDS)


@settings(max_examples=600, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_random_text_only_ever_raises_expression_errors(text: str) -> None:
    try:
        expression = parse_expression(text)
    except ExpressionSyntaxError:
        return
    try:
        expression.evaluate(SCOPE)
    except ExpressionEvaluationError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_unicode_only_ever_raises_expression_errors(text: str) -> None:
    try:
        parse_template(text).render(SCOPE)
    except (ExpressionSyntaxError, ExpressionEvaluationError):
        pass


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(
        [
            "a + b",
            "a - b",
            "a * b",
            "a / b",
            "a % b",
            "a < b",
            "a >= b",
            "a in b",
            "a == b",
            "-a",
            "not a",
            "len(a)",
            "int(a)",
            "number(a)",
            "round(a)",
            "round(a, b)",
            "substr(a, b)",
            "contains(a, b)",
            "min(a, b)",
            "a[b]",
            "a.x",
            "str(a)",
            "upper(a)",
            "replace(a, b, a)",
            "abs(a)",
            "coalesce(a, b)",
        ]
    ),
    _VALUES,
    _VALUES,
)
def test_any_operands_only_ever_raise_evaluation_errors(source: str, a: object, b: object) -> None:
    try:
        evaluate(source, {"a": a, "b": b})  # type: ignore[dict-item]
    except ExpressionEvaluationError:
        pass
