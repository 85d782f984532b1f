from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudcc.ivr import Rule, ensure_valid, flow_json_schema, parse_flow, validate_flow
from cloudcc.ivr.exceptions import FlowDocumentError, FlowValidationError
from cloudcc.ivr.flows import demo_flow

from .helpers import flow, hangup

DATA = Path(__file__).parents[1] / "data" / "ivr"


def rules_at(problems: list, node_id: str | None) -> set[str]:  # type: ignore[type-arg]
    return {p.rule for p in problems if p.node_id == node_id}


def test_demo_and_fixture_flows_are_valid() -> None:
    assert validate_flow(demo_flow()) == []
    for path in sorted(DATA.glob("*.json")):
        assert validate_flow(parse_flow(path.read_text())) == [], path.name


def test_unreachable_node_is_named() -> None:
    f = flow([hangup("end"), {"id": "orphan", "type": "hangup"}])
    problems = validate_flow(f)
    assert rules_at(problems, "orphan") == {Rule.UNREACHABLE}
    assert "from start 'end'" in str(problems[0])


def test_output_to_missing_node_is_dangling() -> None:
    f = flow(
        [{"id": "hello", "type": "play", "prompt": {"text": "hi"}, "outputs": {"next": "nowhere"}}]
    )
    problems = validate_flow(f)
    dangling = [p for p in problems if p.rule == Rule.DANGLING_OUTPUT]
    assert dangling and dangling[0].node_id == "hello" and dangling[0].field == "next"
    assert "'nowhere'" in dangling[0].message


def test_unconnected_required_output_is_reported_but_optional_one_is_not() -> None:
    f = flow(
        [
            {"id": "hours", "type": "check_hours", "schedule": "s", "outputs": {"open": "end"}},
            hangup(),
        ],
        schedules={"s": {"weekly": {"mon": ["09:00-17:00"]}}},
    )
    problems = validate_flow(f)
    unconnected = {(p.node_id, p.field) for p in problems if p.rule == Rule.UNCONNECTED_OUTPUT}
    assert unconnected == {("hours", "closed")}


def test_node_without_path_to_an_exit_is_reported() -> None:
    f = flow(
        [
            {
                "id": "ask",
                "type": "menu",
                "prompt": {"text": "press 1"},
                "options": [{"key": "1", "next": "ask"}],
                "outputs": {"no_input": "ask", "invalid": "ask"},
            }
        ]
    )
    assert Rule.NO_EXIT in rules_at(validate_flow(f), "ask")


def test_loop_without_input_is_reported_with_its_members() -> None:
    f = flow(
        [
            {
                "id": "count",
                "type": "set_variable",
                "assignments": [{"variable": "n", "value": "1"}],
                "outputs": {"next": "check"},
            },
            {
                "id": "check",
                "type": "branch",
                "conditions": [{"when": "n > 5", "next": "end"}],
                "outputs": {"default": "count"},
            },
            hangup(),
        ]
    )
    loops = [p for p in validate_flow(f) if p.rule == Rule.LOOP_WITHOUT_INPUT]
    assert len(loops) == 1
    assert loops[0].node_id == "count" and "'count' -> 'check'" in loops[0].message


def test_loop_through_a_menu_is_allowed() -> None:
    f = flow(
        [
            {
                "id": "menu",
                "type": "menu",
                "prompt": {"text": "1 to repeat, 2 to leave"},
                "options": [{"key": "1", "next": "again"}, {"key": "2", "next": "end"}],
                "outputs": {"no_input": "end", "invalid": "end"},
            },
            {
                "id": "again",
                "type": "play",
                "prompt": {"text": "again"},
                "outputs": {"next": "menu"},
            },
            hangup(),
        ]
    )
    assert validate_flow(f) == []


def test_unknown_variable_is_named_with_field() -> None:
    f = flow(
        [
            {
                "id": "b",
                "type": "branch",
                "conditions": [{"when": "vip_level > 2", "next": "end"}],
                "outputs": {"default": "end"},
            },
            hangup(),
        ]
    )
    problems = validate_flow(f)
    assert [(p.rule, p.node_id, p.field) for p in problems] == [
        (Rule.UNKNOWN_VARIABLE, "b", "conditions[0].when")
    ]
    assert "'vip_level'" in problems[0].message


def test_variables_stored_by_nodes_count_as_known() -> None:
    f = flow(
        [
            {
                "id": "acct",
                "type": "get_digits",
                "prompt": {"text": "account?"},
                "variable": "account",
                "outputs": {"success": "say", "no_input": "end", "invalid": "end"},
            },
            {
                "id": "say",
                "type": "play",
                "prompt": {"text": "You entered {account}"},
                "outputs": {"next": "end"},
            },
            hangup(),
        ]
    )
    assert validate_flow(f) == []


def test_bad_expression_and_bad_template_are_reported() -> None:
    f = flow(
        [
            {
                "id": "set",
                "type": "set_variable",
                "assignments": [{"variable": "x", "value": "1 +"}],
                "outputs": {"next": "say"},
            },
            {"id": "say", "type": "play", "prompt": {"text": "Hi {x"}, "outputs": {"next": "end"}},
            hangup(),
        ]
    )
    problems = validate_flow(f)
    bad = {(p.node_id, p.field) for p in problems if p.rule == Rule.BAD_EXPRESSION}
    assert bad == {("set", "assignments[0].value"), ("say", "prompt.text")}


def test_missing_prompt_is_reported() -> None:
    f = flow([{"id": "say", "type": "play", "outputs": {"next": "end"}}, hangup()])
    assert rules_at(validate_flow(f), "say") == {Rule.MISSING_PROMPT}


def test_chat_flow_needs_text_for_audio_prompts() -> None:
    nodes = [
        {
            "id": "say",
            "type": "play",
            "prompt": {"audio": "welcome.wav"},
            "outputs": {"next": "end"},
        },
        hangup(),
    ]
    assert validate_flow(flow(nodes)) == []
    assert rules_at(validate_flow(flow(nodes, channels=["voice", "chat"])), "say") == {
        Rule.CHAT_NEEDS_TEXT
    }


def test_menu_with_duplicate_keys_and_keywords_is_reported() -> None:
    f = flow(
        [
            {
                "id": "m",
                "type": "menu",
                "prompt": {"text": "?"},
                "options": [
                    {"key": "1", "keywords": ["sales"], "next": "end"},
                    {"key": "1", "keywords": ["Sales"], "next": "end"},
                ],
                "outputs": {"no_input": "end", "invalid": "end"},
            },
            hangup(),
        ]
    )
    messages = [p.message for p in validate_flow(f) if p.rule == Rule.BAD_MENU]
    assert len(messages) == 2


def test_unknown_schedule_and_bad_schedule_are_reported() -> None:
    f = flow(
        [
            {
                "id": "h",
                "type": "check_hours",
                "schedule": "other",
                "outputs": {"open": "end", "closed": "end"},
            },
            hangup(),
        ],
        schedules={"main": {"timezone": "Mars/Olympus", "weekly": {"mon": ["9-5"]}}},
    )
    problems = validate_flow(f)
    assert Rule.UNKNOWN_SCHEDULE in rules_at(problems, "h")
    assert any(p.rule == Rule.BAD_SCHEDULE and "Mars/Olympus" in p.message for p in problems)
    assert validate_flow(f.model_copy(update={"schedules": {}}), known_schedules={"other"}) == []


def test_min_digits_above_max_digits_is_reported() -> None:
    f = flow(
        [
            {
                "id": "d",
                "type": "get_digits",
                "prompt": {"text": "?"},
                "min_digits": 5,
                "max_digits": 3,
                "outputs": {"success": "end", "no_input": "end", "invalid": "end"},
            },
            hangup(),
        ]
    )
    assert rules_at(validate_flow(f), "d") == {Rule.BAD_DIGITS}


def test_duplicate_ids_and_missing_start_are_reported() -> None:
    f = flow([hangup("a"), hangup("a")], start="zzz")
    rules = {p.rule for p in validate_flow(f)}
    assert {Rule.DUPLICATE_ID, Rule.UNKNOWN_NODE} <= rules


def test_transfer_to_unknown_flow_is_reported_when_flows_are_known() -> None:
    f = flow([{"id": "jump", "type": "transfer_flow", "flow": "billing"}])
    assert validate_flow(f) == []
    assert rules_at(validate_flow(f, known_flows={"sales"}), "jump") == {Rule.UNKNOWN_FLOW}


def test_ensure_valid_raises_with_every_problem() -> None:
    f = flow([hangup("end"), hangup("x"), hangup("y")])
    with pytest.raises(FlowValidationError) as info:
        ensure_valid(f)
    assert {p.node_id for p in info.value.problems} == {"x", "y"}


def test_schema_error_names_the_node_and_field() -> None:
    with pytest.raises(FlowDocumentError) as info:
        parse_flow(
            {
                "id": "f",
                "name": "n",
                "start": "a",
                "nodes": [{"id": "a", "type": "get_digits", "max_digits": "many"}],
            }
        )
    assert info.value.node_id == "a"
    assert info.value.location == "max_digits"


def test_unknown_node_type_and_bad_json_are_document_errors() -> None:
    with pytest.raises(FlowDocumentError, match="node 'a'"):
        parse_flow(
            {"id": "f", "name": "n", "start": "a", "nodes": [{"id": "a", "type": "teleport"}]}
        )
    with pytest.raises(FlowDocumentError, match="not valid JSON"):
        parse_flow("{nope")


def test_json_schema_exports_every_node_type() -> None:
    schema = flow_json_schema()
    text = json.dumps(schema)
    for node_type in [
        "play",
        "get_digits",
        "menu",
        "set_variable",
        "branch",
        "check_hours",
        "webhook",
        "set_language",
        "set_skills",
        "set_priority",
        "transfer_queue",
        "transfer_agent",
        "transfer_external",
        "transfer_flow",
        "voicemail",
        "offer_callback",
        "hangup",
    ]:
        assert f'"const": "{node_type}"' in text, node_type
    assert schema["$id"].endswith("flow-1.json")


def test_flow_round_trips_through_json() -> None:
    f = demo_flow()
    assert parse_flow(f.model_dump_json()) == f


def test_a_transfer_out_presents_only_the_tenants_caller_ids() -> None:
    """Issue 18.5: no caller-ID spoofing through a flow."""
    own = {"+15550100", "4000"}

    def problems(caller_id: str | None) -> list:  # type: ignore[type-arg]
        node = {"id": "out", "type": "transfer_external", "number": "15550123"}
        if caller_id is not None:
            node["caller_id"] = caller_id
        return validate_flow(flow([node]), known_caller_ids=own)

    for allowed in (None, "caller", "+15550100", "+1 555 0100", "15550100", "4000"):
        assert problems(allowed) == [], allowed
    for spoofed in ("+15550199", "+0015550100", "anonymous", "400"):
        found = problems(spoofed)
        assert [(p.rule, p.node_id, p.field) for p in found] == [
            (Rule.CALLER_ID, "out", "caller_id")
        ], spoofed
    # Without the tenant's numbers (a document checked alone) the rule is not applied; with
    # none, every caller ID but the caller's is refused.
    node = {"id": "out", "type": "transfer_external", "number": "1", "caller_id": "+15550199"}
    assert validate_flow(flow([node])) == []
    assert rules_at(validate_flow(flow([node]), known_caller_ids=()), "out") == {Rule.CALLER_ID}
    with pytest.raises(FlowValidationError):
        ensure_valid(flow([node]), known_caller_ids=own)
