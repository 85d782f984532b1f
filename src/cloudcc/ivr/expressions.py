"""The flow expression language: a small, safe, hand-written parser and evaluator (no ``eval``).

Grammar (lowest to highest precedence)::

    expr     := or
    or       := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | compare
    compare  := sum (("=="|"!="|"<"|"<="|">"|">="|"in"|"not" "in") sum)?
    sum      := product (("+"|"-") product)*
    product  := unary (("*"|"/"|"%") unary)*
    unary    := "-" unary | postfix
    postfix  := primary ("." NAME | "[" expr "]")*
    primary  := NUMBER | STRING | "true" | "false" | "null" | NAME | NAME "(" args ")"
              | "(" expr ")" | "[" (expr ("," expr)*)? "]"

Templates are text with ``{expression}`` holes; ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from cloudcc.ivr.exceptions import ExpressionEvaluationError, ExpressionSyntaxError

Value: TypeAlias = bool | int | float | str | list["Value"] | dict[str, "Value"] | None

MAX_EXPRESSION_LENGTH = 2000
MAX_DEPTH = 64
MAX_STRING_LENGTH = 65536

_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_TWO_CHAR_OPS = {"==", "!=", "<=", ">="}
_ONE_CHAR_OPS = set("+-*/%<>()[],.")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "num", "str", "name", "op", "kw", "end"
    text: str
    pos: int
    value: Value = None


def _tokenize(src: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c.isspace():
            i += 1
        elif c.isdigit() or (c == "." and i + 1 < n and src[i + 1].isdigit()):
            start = i
            while i < n and src[i].isdigit():
                i += 1
            is_float = False
            if i < n and src[i] == "." and i + 1 < n and src[i + 1].isdigit():
                is_float = True
                i += 1
                while i < n and src[i].isdigit():
                    i += 1
            text = src[start:i]
            if len(text) > 40:
                raise ExpressionSyntaxError("number literal too long", src, start)
            number: Value = float(text) if is_float else int(text)
            tokens.append(_Token("num", text, start, number))
        elif c in "'\"":
            start = i
            quote = c
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise ExpressionSyntaxError("unterminated string", src, start)
                ch = src[i]
                if ch == "\\":
                    if i + 1 >= n:
                        raise ExpressionSyntaxError("unterminated string", src, start)
                    esc = src[i + 1]
                    chars.append({"n": "\n", "t": "\t"}.get(esc, esc))
                    i += 2
                elif ch == quote:
                    i += 1
                    break
                else:
                    chars.append(ch)
                    i += 1
            tokens.append(_Token("str", src[start:i], start, "".join(chars)))
        elif c.isalpha() or c == "_":
            start = i
            while i < n and (src[i].isalnum() or src[i] == "_"):
                i += 1
            word = src[start:i]
            tokens.append(_Token("kw" if word in _KEYWORDS else "name", word, start))
        elif src[i : i + 2] in _TWO_CHAR_OPS:
            tokens.append(_Token("op", src[i : i + 2], i))
            i += 2
        elif c in _ONE_CHAR_OPS:
            tokens.append(_Token("op", c, i))
            i += 1
        else:
            raise ExpressionSyntaxError(f"unexpected character {c!r}", src, i)
    tokens.append(_Token("end", "", n))
    return tokens


# --- syntax tree -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    value: Value


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Attribute:
    target: Node
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Index:
    target: Node
    index: Node
    pos: int


@dataclass(frozen=True, slots=True)
class ListDisplay:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    args: tuple[Node, ...]
    pos: int


Node = Literal | Name | Attribute | Index | ListDisplay | Unary | Binary | Call


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.tokens = _tokenize(src)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at(self, kind: str, text: str) -> bool:
        tok = self.tokens[self.i]
        return tok.kind == kind and tok.text == text

    def expect(self, kind: str, text: str) -> _Token:
        tok = self.peek()
        if tok.kind != kind or tok.text != text:
            found = tok.text or "end of expression"
            raise ExpressionSyntaxError(f"expected {text!r}, found {found!r}", self.src, tok.pos)
        return self.take()

    def descend(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionSyntaxError("expression nested too deeply", self.src, pos)

    def parse(self) -> Node:
        if not self.src.strip():
            raise ExpressionSyntaxError("empty expression", self.src, 0)
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "end":
            raise ExpressionSyntaxError(f"unexpected {tok.text!r}", self.src, tok.pos)
        return node

    def parse_or(self) -> Node:
        self.descend(self.peek().pos)
        start = self.depth
        node = self.parse_and()
        while self.at("kw", "or"):
            tok = self.take()
            self.descend(tok.pos)
            node = Binary("or", node, self.parse_and(), tok.pos)
        self.depth = start - 1
        return node

    def parse_and(self) -> Node:
        node = self.parse_not()
        start = self.depth
        while self.at("kw", "and"):
            tok = self.take()
            self.descend(tok.pos)
            node = Binary("and", node, self.parse_not(), tok.pos)
        self.depth = start
        return node

    def parse_not(self) -> Node:
        if self.at("kw", "not"):
            tok = self.take()
            self.descend(tok.pos)
            operand = self.parse_not()
            self.depth -= 1
            return Unary("not", operand, tok.pos)
        return self.parse_compare()

    def parse_compare(self) -> Node:
        left = self.parse_sum()
        tok = self.peek()
        op: str | None = None
        if tok.kind == "op" and tok.text in {"==", "!=", "<", "<=", ">", ">="}:
            op = tok.text
            self.take()
        elif tok.kind == "kw" and tok.text == "in":
            op = "in"
            self.take()
        elif tok.kind == "kw" and tok.text == "not" and self.tokens[self.i + 1].text == "in":
            op = "not in"
            self.i += 2
        if op is None:
            return left
        right = self.parse_sum()
        nxt = self.peek()
        if nxt.kind == "op" and nxt.text in {"==", "!=", "<", "<=", ">", ">="}:
            raise ExpressionSyntaxError(
                "chained comparisons are not allowed; use 'and'", self.src, nxt.pos
            )
        return Binary(op, left, right, tok.pos)

    def parse_sum(self) -> Node:
        node = self.parse_product()
        start = self.depth
        while self.peek().kind == "op" and self.peek().text in {"+", "-"}:
            tok = self.take()
            self.descend(tok.pos)
            node = Binary(tok.text, node, self.parse_product(), tok.pos)
        self.depth = start
        return node

    def parse_product(self) -> Node:
        node = self.parse_unary()
        start = self.depth
        while self.peek().kind == "op" and self.peek().text in {"*", "/", "%"}:
            tok = self.take()
            self.descend(tok.pos)
            node = Binary(tok.text, node, self.parse_unary(), tok.pos)
        self.depth = start
        return node

    def parse_unary(self) -> Node:
        if self.at("op", "-"):
            tok = self.take()
            self.descend(tok.pos)
            operand = self.parse_unary()
            self.depth -= 1
            return Unary("-", operand, tok.pos)
        return self.parse_postfix()

    def parse_postfix(self) -> Node:
        node = self.parse_primary()
        start = self.depth
        while True:
            if self.at("op", "."):
                self.descend(self.take().pos)
                tok = self.take()
                if tok.kind != "name":
                    raise ExpressionSyntaxError("expected a name after '.'", self.src, tok.pos)
                node = Attribute(node, tok.text, tok.pos)
            elif self.at("op", "["):
                tok = self.take()
                self.descend(tok.pos)
                index = self.parse_or()
                self.expect("op", "]")
                node = Index(node, index, tok.pos)
            else:
                self.depth = start
                return node

    def parse_primary(self) -> Node:
        tok = self.take()
        if tok.kind in ("num", "str"):
            return Literal(tok.value)
        if tok.kind == "kw" and tok.text in ("true", "false", "null"):
            return Literal({"true": True, "false": False, "null": None}[tok.text])
        if tok.kind == "name":
            if self.at("op", "("):
                if tok.text not in FUNCTIONS:
                    raise ExpressionSyntaxError(f"unknown function {tok.text!r}", self.src, tok.pos)
                self.take()
                args: list[Node] = []
                if not self.at("op", ")"):
                    args.append(self.parse_or())
                    while self.at("op", ","):
                        self.take()
                        args.append(self.parse_or())
                self.expect("op", ")")
                low, high = FUNCTIONS[tok.text].arity
                if not low <= len(args) <= high:
                    raise ExpressionSyntaxError(
                        f"{tok.text}() takes {_arity_text(low, high)} argument(s), got {len(args)}",
                        self.src,
                        tok.pos,
                    )
                return Call(tok.text, tuple(args), tok.pos)
            return Name(tok.text, tok.pos)
        if tok.kind == "op" and tok.text == "(":
            node = self.parse_or()
            self.expect("op", ")")
            return node
        if tok.kind == "op" and tok.text == "[":
            items: list[Node] = []
            if not self.at("op", "]"):
                items.append(self.parse_or())
                while self.at("op", ","):
                    self.take()
                    items.append(self.parse_or())
            self.expect("op", "]")
            return ListDisplay(tuple(items))
        found = tok.text or "end of expression"
        raise ExpressionSyntaxError(f"unexpected {found!r}", self.src, tok.pos)


def _arity_text(low: int, high: int) -> str:
    if low == high:
        return str(low)
    return f"{low} or more" if high > 16 else f"{low} to {high}"


# --- values -------------------------------------------------------------------------------


def is_number(value: Value) -> bool:
    """True for int and float but not bool (bool is its own type in flows)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def type_name(value: Value) -> str:
    """The flow-language name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def to_text(value: Value) -> str:
    """Render a value the way a prompt should say it (integral floats lose their ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, list):
        return ", ".join(to_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {to_text(v)}" for k, v in value.items())
    return str(value)


def is_truthy(value: Value) -> bool:
    """Truthiness as in Python: null, false, 0, "" and empty collections are false."""
    return bool(value)


def values_equal(a: Value, b: Value) -> bool:
    """Equality without ``True == 1``: numbers compare numerically, other values by type."""
    if is_number(a) and is_number(b):
        return a == b
    if type_name(a) != type_name(b):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    return a == b


# --- functions ----------------------------------------------------------------------------


class _EvalFailure(Exception):
    """Internal: a function or operator failed; turned into ExpressionEvaluationError."""


@dataclass(frozen=True, slots=True)
class Function:
    arity: tuple[int, int]
    impl: Callable[[Sequence[Value]], Value]


def _need_str(fn: str, value: Value) -> str:
    if not isinstance(value, str):
        raise _EvalFailure(f"{fn}() needs a string, got {type_name(value)}")
    return value


def _need_int(fn: str, value: Value) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _EvalFailure(f"{fn}() needs a whole number, got {type_name(value)}")
    return value


def _need_number(fn: str, value: Value) -> int | float:
    if not is_number(value):
        raise _EvalFailure(f"{fn}() needs a number, got {type_name(value)}")
    assert isinstance(value, int | float)
    return value


def _checked_str(s: str) -> str:
    if len(s) > MAX_STRING_LENGTH:
        raise _EvalFailure(f"string longer than {MAX_STRING_LENGTH} characters")
    return s


def _fn_len(args: Sequence[Value]) -> Value:
    v = args[0]
    if isinstance(v, str | list | dict):
        return len(v)
    raise _EvalFailure(f"len() needs a string, list or object, got {type_name(v)}")


def _fn_substr(args: Sequence[Value]) -> Value:
    s = _need_str("substr", args[0])
    start = _need_int("substr", args[1])
    if len(args) == 3:
        length = _need_int("substr", args[2])
        if length < 0:
            raise _EvalFailure("substr() length must not be negative")
        return s[start : start + length] if start >= 0 else s[start:][:length]
    return s[start:]


def _fn_replace(args: Sequence[Value]) -> Value:
    s, old, new = (_need_str("replace", a) for a in args)
    if old == "":
        raise _EvalFailure("replace() needs a non-empty text to replace")
    if s.count(old) * max(len(new) - len(old), 0) + len(s) > MAX_STRING_LENGTH:
        raise _EvalFailure(f"string longer than {MAX_STRING_LENGTH} characters")
    return s.replace(old, new)


def _fn_contains(args: Sequence[Value]) -> Value:
    haystack, needle = args
    if isinstance(haystack, str):
        return _need_str("contains", needle) in haystack
    if isinstance(haystack, list):
        return any(values_equal(item, needle) for item in haystack)
    raise _EvalFailure(f"contains() needs a string or list, got {type_name(haystack)}")


def _fn_int(args: Sequence[Value]) -> Value:
    v = args[0]
    if isinstance(v, bool) or v is None:
        raise _EvalFailure(f"int() cannot convert {type_name(v)}")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise _EvalFailure("int() cannot convert an infinite or NaN number")
        return int(v)
    if isinstance(v, str):
        text = v.strip()
        if not text or len(text) > 40 or not text.lstrip("+-").isdigit():
            raise _EvalFailure(f"int() cannot convert {v[:40]!r}")
        return int(text)
    raise _EvalFailure(f"int() cannot convert {type_name(v)}")


def _fn_number(args: Sequence[Value]) -> Value:
    v = args[0]
    if is_number(v):
        return v
    if isinstance(v, str):
        text = v.strip()
        if len(text) <= 40:
            try:
                number = float(text)
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    return int(number) if number.is_integer() and "." not in text else number
    raise _EvalFailure(f"number() cannot convert {to_text(v)[:40]!r}")


def _fn_round(args: Sequence[Value]) -> Value:
    x = _need_number("round", args[0])
    digits = _need_int("round", args[1]) if len(args) == 2 else 0
    if not math.isfinite(x):
        raise _EvalFailure("round() cannot round an infinite or NaN number")
    if not -20 <= digits <= 20:
        raise _EvalFailure("round() digits must be between -20 and 20")
    result = round(x, digits)
    return int(result) if len(args) == 1 else result


def _fn_minmax(
    name: str, pick: Callable[[list[float]], float]
) -> Callable[[Sequence[Value]], Value]:
    def impl(args: Sequence[Value]) -> Value:
        items = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
        if not items:
            raise _EvalFailure(f"{name}() of an empty list")
        numbers = [_need_number(name, v) for v in items]
        return pick(numbers)

    return impl


def _fn_coalesce(args: Sequence[Value]) -> Value:
    for v in args:
        if v is not None and v != "":
            return v
    return None


def _fn_digits(args: Sequence[Value]) -> Value:
    return "".join(ch for ch in _need_str("digits", args[0]) if ch.isdigit())


FUNCTIONS: dict[str, Function] = {
    "len": Function((1, 1), _fn_len),
    "lower": Function((1, 1), lambda a: _need_str("lower", a[0]).lower()),
    "upper": Function((1, 1), lambda a: _need_str("upper", a[0]).upper()),
    "trim": Function((1, 1), lambda a: _need_str("trim", a[0]).strip()),
    "substr": Function((2, 3), _fn_substr),
    "replace": Function((3, 3), _fn_replace),
    "contains": Function((2, 2), _fn_contains),
    "starts_with": Function(
        (2, 2), lambda a: _need_str("starts_with", a[0]).startswith(_need_str("starts_with", a[1]))
    ),
    "ends_with": Function(
        (2, 2), lambda a: _need_str("ends_with", a[0]).endswith(_need_str("ends_with", a[1]))
    ),
    "digits": Function((1, 1), _fn_digits),
    "str": Function((1, 1), lambda a: _checked_str(to_text(a[0]))),
    "int": Function((1, 1), _fn_int),
    "number": Function((1, 1), _fn_number),
    "round": Function((1, 2), _fn_round),
    "abs": Function((1, 1), lambda a: abs(_need_number("abs", a[0]))),
    "min": Function((1, 64), _fn_minmax("min", min)),
    "max": Function((1, 64), _fn_minmax("max", max)),
    "coalesce": Function((1, 64), _fn_coalesce),
    "is_empty": Function((1, 1), lambda a: a[0] is None or a[0] == "" or a[0] == [] or a[0] == {}),
}


# --- evaluation ---------------------------------------------------------------------------


def _arith(op: str, a: Value, b: Value) -> Value:
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return _checked_str(a + b)
    if op == "+" and isinstance(a, list) and isinstance(b, list):
        if len(a) + len(b) > MAX_STRING_LENGTH:
            raise _EvalFailure("list too long")
        return a + b
    if not (is_number(a) and is_number(b)):
        raise _EvalFailure(f"cannot apply {op!r} to {type_name(a)} and {type_name(b)}")
    assert isinstance(a, int | float) and isinstance(b, int | float)
    if op in {"/", "%"} and b == 0:
        raise _EvalFailure("division by zero")
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        result = a / b
        return int(result) if isinstance(a, int) and isinstance(b, int) and a % b == 0 else result
    return a % b


def _compare(op: str, a: Value, b: Value) -> bool:
    if op == "==":
        return values_equal(a, b)
    if op == "!=":
        return not values_equal(a, b)
    if op in {"in", "not in"}:
        if isinstance(b, str):
            if not isinstance(a, str):
                raise _EvalFailure(f"'in' a string needs a string on the left, got {type_name(a)}")
            found = a in b
        elif isinstance(b, list):
            found = any(values_equal(a, item) for item in b)
        elif isinstance(b, dict):
            found = isinstance(a, str) and a in b
        else:
            raise _EvalFailure(f"'in' needs a string, list or object, got {type_name(b)}")
        return found if op == "in" else not found
    if is_number(a) and is_number(b):
        assert isinstance(a, int | float) and isinstance(b, int | float)
        x, y = a, b
    elif isinstance(a, str) and isinstance(b, str):
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    else:
        raise _EvalFailure(f"cannot compare {type_name(a)} and {type_name(b)} with {op!r}")
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


class Expression:
    """A parsed expression, evaluated against a scope of root names (variables, ``contact``)."""

    __slots__ = ("names", "source", "tree")

    def __init__(self, source: str, tree: Node) -> None:
        self.source = source
        self.tree = tree
        self.names: frozenset[str] = frozenset(_root_names(tree))

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def evaluate(self, scope: Mapping[str, Value]) -> Value:
        """Compute the value; raises ExpressionEvaluationError and nothing else."""
        try:
            return self._eval(self.tree, scope)
        except _EvalFailure as exc:
            raise ExpressionEvaluationError(str(exc), self.source) from None
        except (ArithmeticError, ValueError, TypeError) as exc:  # numeric edge cases (inf, huge)
            raise ExpressionEvaluationError(f"arithmetic failed: {exc}", self.source) from None

    def _eval(self, node: Node, scope: Mapping[str, Value]) -> Value:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Name):
            if node.name not in scope:
                raise ExpressionEvaluationError(
                    f"unknown name {node.name!r}", self.source, node.pos
                )
            return scope[node.name]
        if isinstance(node, Attribute):
            target = self._eval(node.target, scope)
            if isinstance(target, dict):
                return target.get(node.name)
            if target is None:
                return None
            raise _EvalFailure(f"{type_name(target)} has no attribute {node.name!r}")
        if isinstance(node, Index):
            target = self._eval(node.target, scope)
            key = self._eval(node.index, scope)
            if isinstance(target, dict):
                if not isinstance(key, str):
                    raise _EvalFailure(f"object keys are strings, got {type_name(key)}")
                return target.get(key)
            if isinstance(target, list | str):
                if not isinstance(key, int) or isinstance(key, bool):
                    raise _EvalFailure(f"an index must be a whole number, got {type_name(key)}")
                if not -len(target) <= key < len(target):
                    return None
                return target[key]
            if target is None:
                return None
            raise _EvalFailure(f"cannot index {type_name(target)}")
        if isinstance(node, ListDisplay):
            return [self._eval(item, scope) for item in node.items]
        if isinstance(node, Unary):
            value = self._eval(node.operand, scope)
            if node.op == "not":
                return not is_truthy(value)
            if not is_number(value):
                raise _EvalFailure(f"cannot negate {type_name(value)}")
            assert isinstance(value, int | float)
            return -value
        if isinstance(node, Binary):
            if node.op == "and":
                return is_truthy(self._eval(node.left, scope)) and is_truthy(
                    self._eval(node.right, scope)
                )
            if node.op == "or":
                return is_truthy(self._eval(node.left, scope)) or is_truthy(
                    self._eval(node.right, scope)
                )
            left = self._eval(node.left, scope)
            right = self._eval(node.right, scope)
            if node.op in {"+", "-", "*", "/", "%"}:
                return _arith(node.op, left, right)
            return _compare(node.op, left, right)
        args = [self._eval(arg, scope) for arg in node.args]
        return FUNCTIONS[node.function].impl(args)


def _root_names(node: Node) -> list[str]:
    if isinstance(node, Name):
        return [node.name]
    if isinstance(node, Attribute):
        return _root_names(node.target)
    if isinstance(node, Index):
        return _root_names(node.target) + _root_names(node.index)
    if isinstance(node, ListDisplay | Call):
        children = node.items if isinstance(node, ListDisplay) else node.args
        return [name for child in children for name in _root_names(child)]
    if isinstance(node, Unary):
        return _root_names(node.operand)
    if isinstance(node, Binary):
        return _root_names(node.left) + _root_names(node.right)
    return []


def parse_expression(source: str) -> Expression:
    """Parse ``source``; raises ExpressionSyntaxError (and nothing else) on bad input."""
    if not isinstance(source, str):
        raise ExpressionSyntaxError(f"an expression must be text, got {type(source).__name__}")
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionSyntaxError(
            f"expression longer than {MAX_EXPRESSION_LENGTH} characters", source[:40]
        )
    return Expression(source, _Parser(source).parse())


def evaluate(source: str, scope: Mapping[str, Value]) -> Value:
    """Parse and evaluate in one go (the interpreter caches parsed expressions instead)."""
    return parse_expression(source).evaluate(scope)


class Template:
    """Prompt text with ``{expression}`` holes, e.g. ``"Hello {contact.name}, press 1"``."""

    __slots__ = ("names", "parts", "source")

    def __init__(self, source: str, parts: tuple[str | Expression, ...]) -> None:
        self.source = source
        self.parts = parts
        self.names: frozenset[str] = frozenset(
            name for part in parts if isinstance(part, Expression) for name in part.names
        )

    def render(self, scope: Mapping[str, Value]) -> str:
        """Fill the holes; raises ExpressionEvaluationError when a hole fails."""
        out = "".join(p if isinstance(p, str) else to_text(p.evaluate(scope)) for p in self.parts)
        if len(out) > MAX_STRING_LENGTH:
            raise ExpressionEvaluationError("rendered text too long", self.source[:40])
        return out


def parse_template(source: str) -> Template:
    """Split a template into text and expressions; raises ExpressionSyntaxError on bad holes."""
    parts: list[str | Expression] = []
    text: list[str] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c == "{" and source[i + 1 : i + 2] == "{":
            text.append("{")
            i += 2
        elif c == "}" and source[i + 1 : i + 2] == "}":
            text.append("}")
            i += 2
        elif c == "{":
            end = source.find("}", i + 1)
            if end < 0:
                raise ExpressionSyntaxError("'{' without a closing '}'", source, i)
            if text:
                parts.append("".join(text))
                text = []
            try:
                parts.append(parse_expression(source[i + 1 : end]))
            except ExpressionSyntaxError as exc:
                offset = (exc.position or 0) + i + 1
                raise ExpressionSyntaxError(exc.reason, source, offset) from None
            i = end + 1
        elif c == "}":
            raise ExpressionSyntaxError("'}' without an opening '{'", source, i)
        else:
            text.append(c)
            i += 1
    if text:
        parts.append("".join(text))
    return Template(source, tuple(parts))
