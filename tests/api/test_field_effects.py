"""Every field of every request body is read and changes behaviour (issue 17): a ledger names,
for each ``<Resource>.<field>``, the test that sets the field and observes its effect, or
``READ_BACK`` for a descriptive field whose effect is that it is stored and shown (proven by the
round trip below). A field added to a schema without a test, or a test renamed away, fails here.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from tests.api.helpers import demo_admin, platform, provision

READ_BACK = "read back"

#: Fields with no test proving their effect yet; each is a failure of the ledger test and a
#: question for the lead (make it work, or take it out of the schema).
PENDING: dict[str, str] = {}

ROOT = Path(__file__).resolve().parents[2]

_D = "tests/api/test_admin_api.py::"
_K = "tests/api/test_api_keys_and_flow_control.py::"
_F = "tests/api/test_flows_api.py::"
_N = "tests/api/test_numbers_and_trunks.py::"
_P = "tests/api/test_permissions.py::"
_C = "tests/agents/test_codes.py::"
_V = "tests/agents/test_devices.py::"
_T = "tests/voice/test_trunks.py::"
_O = "tests/voice/test_outbound.py::"
_I = "tests/voice/test_inbound.py::"
_X = "tests/voice/test_transfers.py::"
_W = "tests/events/test_webhooks.py::"
_S = "tests/api/test_tenant_settings.py::"
_R = "tests/routing/test_queue_rows.py::"
_H = "tests/contacts/test_call_settings.py::"
_M = "tests/voice/test_voicemail.py::"

EFFECTS: dict[str, str] = {
    # --- the admin's text-to-speech preview (prompts.SpeechIn)
    "Speech.text": "tests/voice/test_tts_preview.py::test_the_preview_speaks_the_text_in_the_language_asked",
    "Speech.language": "tests/voice/test_tts_preview.py::test_the_preview_speaks_the_text_in_the_language_asked",
    # --- sign-in (auth.LoginIn) and the agent's sign-in (calls.LoginIn)
    "Login.tenant": _S + "test_a_new_tenant_signs_in_by_its_slug_with_its_admin_username",
    "Login.username": _S + "test_a_new_tenant_signs_in_by_its_slug_with_its_admin_username",
    "Login.password": _D + "test_wrong_password_and_bad_tokens_get_401",
    "AgentLogin.device": _V
    + "test_sign_in_needs_a_registered_phone_and_losing_it_makes_the_agent_not_ready",
    "AgentLogin.heartbeat_seconds": "tests/agents/test_client_sessions.py::test_heartbeats_keep_the_session_and_silence_signs_out",
    "AgentLogin.replace": "tests/agents/test_client_sessions.py::test_a_second_client_takes_over_with_replace",
    "AgentLogin.ready": "tests/agents/test_client_sessions.py::test_a_second_client_takes_over_with_replace",
    # --- tenants
    "Tenant.slug": _S + "test_a_new_tenant_signs_in_by_its_slug_with_its_admin_username",
    "Tenant.name": READ_BACK,
    "Tenant.admin_username": _S + "test_a_new_tenant_signs_in_by_its_slug_with_its_admin_username",
    "Tenant.admin_password": _S + "test_a_new_tenant_signs_in_by_its_slug_with_its_admin_username",
    "Tenant.timezone": _H + "test_the_tenants_time_zone_decides_when_a_flows_own_hours_are_open",
    "Tenant.sip_domain": _V + "test_a_phone_registers_in_the_tenant_of_its_sip_domain",
    "Tenant.status": _S + "test_a_suspended_tenant_cannot_sign_in_until_it_is_active_again",
    "Tenant.max_seats": _D + "test_seat_quota_is_enforced",
    "Tenant.max_concurrent_calls": "tests/voice/test_quotas.py::test_a_call_over_the_tenants_quota_is_refused_and_the_others_go_on",
    "Tenant.rate_limit_rps": _S + "test_the_tenants_own_rate_limit_answers_429",
    "Tenant.recording_retention_days": _S
    + "test_recordings_older_than_the_retention_set_by_api_are_purged",
    "Tenant.srtp_policy": "tests/webrtc/test_sdes.py::test_a_required_policy_refuses_a_plain_call_over_udp",
    "Tenant.dial_plan": "tests/voice/test_destinations.py::test_outside_numbers_follow_the_dial_plan_and_need_a_trunk",
    "Tenant.sip_destinations": "tests/voice/test_destinations.py::test_a_call_to_an_unlisted_sip_address_is_refused_and_no_invite_leaves",
    # --- flows
    "Validate.document": _F + "test_publishing_an_invalid_flow_names_the_bad_node",
    "Flow.document": _F + "test_draft_publish_edit_and_rollback",
    "Draft.document": _F + "test_draft_publish_edit_and_rollback",
    "Draft.expected_revision": _F + "test_draft_publish_edit_and_rollback",
    "Publish.expected_revision": _F + "test_draft_publish_edit_and_rollback",
    "Rollback.to_version": _F + "test_rollback_to_a_chosen_version_is_what_calls_run",
    # --- agent states and supervision
    "State.state": _C + "test_tenant_reason_codes_drive_agent_states",
    "State.reason": _C + "test_tenant_reason_codes_drive_agent_states",
    "Force.action": "tests/agents/test_force.py::test_a_forced_state_is_the_agents_state",
    "Force.seconds": "tests/agents/test_force.py::test_a_forced_rest_with_seconds_ends_by_itself",
    "Monitor.mode": "tests/voice/test_call_control.py::test_supervisor_listens_whispers_and_barges",
    "Monitor.device": "tests/voice/test_call_control.py::test_supervisor_listens_whispers_and_barges",
    # --- call control
    "Dtmf.digits": "tests/voice/test_call_control.py::test_mute_and_dtmf_to_the_customer",
    "Transfer.target_type": _X + "test_blind_transfer_to_a_flow_puts_the_caller_back_in_the_menu",
    "Transfer.target": _X + "test_blind_transfer_to_a_queue_reaches_another_agent",
    "Consult.target_type": _X + "test_consultative_transfer_to_an_outside_number",
    "Consult.target": _X + "test_consultation_in_a_queue_reaches_the_agent_the_acd_offers",
    "Wrapup.code": _O + "test_wrapup_with_a_disposition_code_ends_the_after_call_work",
    "Wrapup.notes": _O + "test_wrapup_with_a_disposition_code_ends_the_after_call_work",
    "Wrapup.done": _O + "test_wrapup_not_done_keeps_the_agent_in_wrap_up",
    "Record.action": "tests/voice/test_recording_control.py::test_a_paused_recording_leaves_out_the_pause",
    "Call.to": _O + "test_click_to_call_rings_the_agent_then_the_customer",
    "Call.agent_id": _O + "test_click_to_call_rings_the_agent_then_the_customer",
    "Call.queue": _O + "test_customer_first_call_is_routed_to_a_queue_when_answered",
    "Call.flow": _O + "test_customer_first_call_runs_the_flow_when_answered",
    # --- numbers (platform pool and the tenant's own)
    "Provision.number": _N + "test_a_tenant_admin_creates_only_numbers_provisioned_to_its_tenant",
    "Provision.tenant_id": _N
    + "test_only_the_platform_operator_provisions_and_a_tenant_sees_only_its_own",
    "Number.number": _I + "test_a_flow_plays_an_uploaded_prompt",
    "Number.name": READ_BACK,
    "Number.trunk_id": _T + "test_a_number_bound_to_a_trunk_answers_that_trunks_calls_only",
    "Number.target_type": _I + "test_a_flow_plays_an_uploaded_prompt",
    "Number.target": _I + "test_a_flow_plays_an_uploaded_prompt",
    # --- reason and disposition codes
    "ReasonCode.code": _C + "test_tenant_reason_codes_drive_agent_states",
    "ReasonCode.label": READ_BACK,
    "ReasonCode.cec_state": _C + "test_tenant_reason_codes_drive_agent_states",
    "ReasonCode.max_seconds": _C + "test_tenant_reason_codes_drive_agent_states",
    "ReasonCode.auto_ready": _C + "test_tenant_reason_codes_drive_agent_states",
    "Disposition.code": _C + "test_wrapup_codes_are_checked_once_a_tenant_defines_them",
    "Disposition.label": READ_BACK,
    # --- agents
    "Agent.name": READ_BACK,
    "Agent.extension": _O + "test_an_agent_calls_a_colleague_by_extension",
    "Agent.sip_password": _I
    + "test_caller_and_agent_hear_each_other_and_the_recording_has_both_sides",
    "Agent.skills": _R + "test_an_agent_rows_skills_decide_which_calls_it_is_offered",
    "Agent.role": "tests/api/test_principal_control.py::test_agents_write_cannot_change_an_agent_whose_user_is_admin",
    "Agent.username": _S + "test_an_agent_signs_in_with_the_username_and_password_it_was_given",
    "Agent.password": _S + "test_an_agent_signs_in_with_the_username_and_password_it_was_given",
    "Agent.email": READ_BACK,
    "Agent.status": _S + "test_a_disabled_agent_cannot_sign_in",
    "Agent.device": _V + "test_a_device_the_admin_assigned_is_allowed",
    # --- queues
    "Queue.name": READ_BACK,
    "Queue.description": READ_BACK,
    "Queue.required_skills": _R + "test_a_queue_rows_skills_decide_who_is_offered",
    "Queue.strategy": _R + "test_a_queue_rows_strategy_decides_who_is_offered_first",
    "Queue.ring_timeout_seconds": _I
    + "test_an_unanswered_offer_goes_back_to_the_queue_and_the_agent_is_made_not_ready",
    "Queue.wrapup_seconds": _R + "test_a_queue_rows_wrapup_seconds_end_the_after_call_work",
    "Queue.max_wait_seconds": _O
    + "test_a_caller_tired_of_waiting_is_called_back_when_an_agent_is_free",
    "Queue.capacity": _R + "test_a_full_queue_row_applies_its_queue_full_overflow",
    "Queue.service_level_seconds": _R + "test_a_queue_rows_service_level_counts_in_its_statistics",
    "Queue.priority": _R + "test_a_queue_rows_priority_orders_its_callers_first",
    "Queue.music_on_hold": "tests/voice/test_queue_treatments.py::test_the_waiting_caller_hears_the_queues_own_music_on_hold",
    "Queue.overflow": _O + "test_a_caller_tired_of_waiting_is_called_back_when_an_agent_is_free",
    "Queue.announce_position": _R + "test_a_queue_rows_position_announcements_follow_its_settings",
    "Queue.announce_interval_seconds": _R
    + "test_a_queue_rows_position_announcements_follow_its_settings",
    # --- voicemail
    "Mailbox.max_seconds": _M
    + "test_a_message_ends_at_the_maximum_length_or_when_the_caller_hangs_up",
    "Mailbox.silence_seconds": _M
    + "test_an_unreachable_agents_caller_leaves_a_message_ended_by_silence",
    "Mailbox.end_key": _M
    + "test_a_mailboxs_own_greeting_is_heard_and_its_own_key_ends_the_message",
    "Mailbox.greeting": _M
    + "test_a_mailboxs_own_greeting_is_heard_and_its_own_key_ends_the_message",
    "MessageChange.read": _M + "test_a_caller_leaves_a_queue_a_message_ended_by_the_key",
    # --- trunks
    "Trunk.name": _T
    + "test_calls_out_fail_over_after_a_503_and_a_silent_trunk_with_the_trunks_caller_id",
    "Trunk.host": _T
    + "test_calls_out_fail_over_after_a_503_and_a_silent_trunk_with_the_trunks_caller_id",
    "Trunk.port": _T
    + "test_calls_out_fail_over_after_a_503_and_a_silent_trunk_with_the_trunks_caller_id",
    "Trunk.transport": _H
    + "test_calls_out_take_the_outbound_trunks_by_priority_over_their_transport",
    "Trunk.username": _T
    + "test_calls_out_answer_the_carriers_digest_challenge_with_the_trunks_credentials",
    "Trunk.password": _T
    + "test_calls_out_answer_the_carriers_digest_challenge_with_the_trunks_credentials",
    "Trunk.allowed_ips": _T
    + "test_a_call_from_a_trunks_network_is_answered_and_any_other_source_gets_403",
    "Trunk.registration": _T
    + "test_registration_with_digest_is_refreshed_and_the_carriers_calls_reach_its_contact",
    "Trunk.inbound_auth": _T
    + "test_a_pbx_that_registers_with_the_trunks_credentials_calls_in_and_is_called",
    "Trunk.max_channels": _T
    + "test_max_channels_refuses_the_next_call_in_and_sends_the_next_call_out_elsewhere",
    "Trunk.caller_id": _T
    + "test_calls_out_fail_over_after_a_503_and_a_silent_trunk_with_the_trunks_caller_id",
    "Trunk.priority": _T
    + "test_calls_out_fail_over_after_a_503_and_a_silent_trunk_with_the_trunks_caller_id",
    "Trunk.outbound": _H
    + "test_calls_out_take_the_outbound_trunks_by_priority_over_their_transport",
    # --- business hours
    "Hours.name": _H + "test_business_hours_zone_weekly_hours_holidays_and_name_decide_the_call",
    "Hours.timezone": _H
    + "test_business_hours_zone_weekly_hours_holidays_and_name_decide_the_call",
    "Hours.weekly": _H + "test_business_hours_zone_weekly_hours_holidays_and_name_decide_the_call",
    "Hours.holidays": _H
    + "test_business_hours_zone_weekly_hours_holidays_and_name_decide_the_call",
    # --- users, roles, API keys
    "User.username": "tests/api/test_permissions.py::test_custom_role_composed_of_permissions",
    "User.password": "tests/api/test_permissions.py::test_custom_role_composed_of_permissions",
    "User.display_name": READ_BACK,
    "User.email": READ_BACK,
    "User.role": _P + "test_custom_role_composed_of_permissions",
    "User.status": "tests/events/test_stream_ws.py::test_revoked_token_ends_the_stream",
    "Role.name": _P + "test_custom_role_composed_of_permissions",
    "Role.description": READ_BACK,
    "Role.permissions": _P + "test_custom_role_composed_of_permissions",
    "ApiKey.name": READ_BACK,
    "ApiKey.role": "tests/api/test_principal_control.py::test_apikeys_write_cannot_revive_an_admin_key",
    "ApiKey.status": _K + "test_disabled_and_expired_keys_stop_working",
    "ApiKey.rate_limit_rps": _K + "test_per_key_rate_limit_answers_429_with_retry_after",
    "ApiKey.expires_at": _K + "test_disabled_and_expired_keys_stop_working",
    # --- webhooks
    "Webhook.url": _W + "test_signed_events_arrive_and_verify",
    "Webhook.event_types": _W + "test_signed_events_arrive_and_verify",
    "Webhook.active": _W + "test_webhook_crud_validation_and_permissions",
    "Webhook.description": READ_BACK,
}

# Request component names that do not follow ``<Resource><Create|Update|In|Save>``.
_RESOURCE_NAMES = {
    "cloudcc__api__schemas__LoginIn": "Login",
    "cloudcc__api__calls__LoginIn": "AgentLogin",
}


def resource_of(component: str) -> str:
    """``QueueCreate`` -> ``Queue``; the ledger's name for a request schema."""
    if component in _RESOURCE_NAMES:
        return _RESOURCE_NAMES[component]
    return re.sub(r"(Create|Update|In|Save)$", "", component.rsplit("__", 1)[-1])


def request_fields(doc: dict[str, Any]) -> dict[str, set[str]]:
    """Every ``<Resource>.<field>`` of a JSON request body, with the operations taking it."""
    schemas = doc["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        ref = schema.get("$ref")
        if ref is None:
            return None
        name = ref.rsplit("/", 1)[-1]
        return name, schemas[name]

    found: dict[str, set[str]] = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("post", "put", "patch"):
                continue
            content = op.get("requestBody", {}).get("content", {})
            media = content.get("application/json")
            if media is None:
                continue
            resolved = resolve(media.get("schema", {}))
            assert resolved is not None, f"{method.upper()} {path}: inline request schema"
            name, schema = resolved
            for field in schema.get("properties", {}):
                key = f"{resource_of(name)}.{field}"
                found.setdefault(key, set()).add(f"{method.upper()} {path}")
    return found


@cache
def _test_functions(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text())
    return frozenset(
        n.name
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test_")
    )


def missing_test(node_id: str) -> str | None:
    """Why ``node_id`` names no test function, or None when it does."""
    path, sep, name = node_id.partition("::")
    if not sep or not name:
        return f"{node_id!r} is not a pytest node id (path::test_name)"
    if not (ROOT / path).is_file():
        return f"{node_id}: no file {path}"
    if name not in _test_functions(path):
        return f"{node_id}: {path} has no test function {name}"
    return None


async def test_every_request_field_has_an_effect(node):
    fields = request_fields(node.app.openapi())
    problems = [
        f"{key} ({', '.join(sorted(ops))}) is in no ledger entry: add to EFFECTS the test that "
        "sets it and sees its effect, or READ_BACK for a descriptive field"
        for key, ops in sorted(fields.items())
        if key not in EFFECTS and key not in PENDING
    ]
    problems += [
        f"{key} is in the ledger but in no request schema: remove it"
        for key in sorted(set(EFFECTS) | set(PENDING))
        if key not in fields
    ]
    problems += [f"{key} is in EFFECTS and PENDING" for key in sorted(set(EFFECTS) & set(PENDING))]
    for key, ref in sorted(EFFECTS.items()):
        if ref != READ_BACK and (why := missing_test(ref)) is not None:
            problems.append(f"{key}: {why}")
    assert not problems, "\n".join(problems)


def test_no_request_field_is_pending():
    """A PENDING field is accepted by the API with no test that it does anything: a defect."""
    assert not PENDING, "\n".join(f"{key}: {why}" for key, why in sorted(PENDING.items()))


def test_the_ledger_check_notices_a_missing_field_and_a_renamed_test():
    doc = {
        "components": {"schemas": {"GadgetCreate": {"properties": {"colour": {}, "size": {}}}}},
        "paths": {
            "/gadgets": {
                "post": {
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/x/GadgetCreate"}}}
                    }
                }
            }
        },
    }
    assert request_fields(doc) == {
        "Gadget.colour": {"POST /gadgets"},
        "Gadget.size": {"POST /gadgets"},
    }
    assert missing_test(_D + "test_seat_quota_is_enforced") is None
    assert "no test function" in (missing_test(_D + "test_seat_quota_was_renamed") or "")
    assert "no file" in (missing_test("tests/api/nowhere.py::test_x") or "")
    assert "not a pytest node id" in (missing_test("tests/api/test_admin_api.py") or "")


# --- READ_BACK fields are stored and shown --------------------------------------------------


async def _base_bodies(
    client: httpx.AsyncClient, node: Any, admin: dict[str, str]
) -> dict[str, Any]:
    """For each resource with READ_BACK fields: (collection path, headers, a valid body)."""
    await provision(client, node, "+4930555777", admin)
    return {
        "Tenant": ("/api/v1/tenants", await platform(client, node),
                   {"slug": "readback", "admin_password": "readback-pass-1"}),
        "Agent": ("/api/v1/agents", admin,
                  {"name": "Rita", "extension": "2777", "sip_password": "secret-2777"}),
        "Queue": ("/api/v1/queues", admin, {"name": "readback"}),
        "Number": ("/api/v1/numbers", admin,
                   {"number": "+4930555777", "target_type": "queue", "target": "support"}),
        "ReasonCode": ("/api/v1/reason-codes", admin, {"code": "readback"}),
        "Disposition": ("/api/v1/disposition-codes", admin, {"code": "readback"}),
        "User": ("/api/v1/users", admin,
                 {"username": "readback", "password": "readback-pass-1", "role": "agent"}),
        "Role": ("/api/v1/roles", admin, {"name": "readback", "permissions": ["queues:read"]}),
        "ApiKey": ("/api/v1/api-keys", admin, {"name": "readback"}),
        "Webhook": ("/api/v1/webhooks", admin,
                    {"url": "https://93.184.215.14/hook", "event_types": ["contact.ended"]}),
    }  # fmt: skip


def _value(field: str, round_: int) -> str:
    if field == "email":
        return f"read.back{round_}@example.com"
    if field == "name":
        return f"readback-{round_}"
    return f"Read back {field} {round_}"


async def test_read_back_fields_are_stored_and_shown(client, node):
    admin = await demo_admin(client, node)
    bodies = await _base_bodies(client, node, admin)
    read_back: dict[str, list[str]] = {}
    for key, ref in EFFECTS.items():
        if ref == READ_BACK:
            resource, field = key.split(".")
            read_back.setdefault(resource, []).append(field)
    assert set(read_back) <= set(bodies), f"give a base body for {set(read_back) - set(bodies)}"
    for resource, fields in sorted(read_back.items()):
        path, headers, base = bodies[resource]
        body = {**base, **{f: _value(f, 1) for f in fields}}
        r = await client.post(path, json=body, headers=headers)
        assert r.status_code == 201, (resource, r.text)
        item = f"{path}/{r.json()['id']}"
        shown = (await client.get(item, headers=headers)).json()
        for field in fields:
            assert shown[field] == _value(field, 1), (resource, field, shown)
        r = await client.patch(item, json={f: _value(f, 2) for f in fields}, headers=headers)
        assert r.status_code == 200, (resource, r.text)
        shown = (await client.get(item, headers=headers)).json()
        for field in fields:
            assert shown[field] == _value(field, 2), (resource, field, shown)
