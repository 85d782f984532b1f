"""The endpoint against SIPp: registration, calls both ways, CANCEL, hold, DTMF, REFER."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cloudcc.sip.auth import Credential
from cloudcc.sip.call import (
    Answered,
    AuthKind,
    Cancelled,
    DtmfReceived,
    EndCause,
    Ended,
    IncomingCall,
    ReferReceived,
    ReinviteReceived,
    Ringing,
)
from cloudcc.sip.exceptions import CallEnded, CallFailed
from cloudcc.sip.registrar import ContactRequest
from cloudcc.sip.sdp import make_offer
from cloudcc.sip.timers import TimerSettings

from .conftest import App, wait_for
from .helpers import SippServer, free_port, run_sipp

pytestmark = pytest.mark.peer


def users_csv(tmp_path: Path, user: str, password: str) -> str:
    path = tmp_path / "users.csv"
    path.write_text(f"SEQUENTIAL\n{user};[authentication username={user} password={password}]\n")
    return str(path)


async def test_phone_registers_with_digest_and_is_found_by_lookup(make_endpoint, app, tmp_path):
    changes: list[tuple[str, int]] = []
    ep = await make_endpoint(app)
    ep.registrar.subscribe(lambda aor, bindings: changes.append((aor, len(bindings))))
    result = await run_sipp(
        ep.ports["UDP"],
        scenario="register_digest",
        extra=["-inf", users_csv(tmp_path, "alice", "secret")],
    )
    assert result.returncode == 0, result.errors()
    bindings = ep.registrar.lookup("sip:alice@127.0.0.1", ep.now())
    assert len(bindings) == 1
    assert bindings[0].owner == ("tenant-1", "alice")
    assert bindings[0].expires_in(ep.now()) == 300
    assert changes == [("sip:alice@127.0.0.1", 1)]


async def test_register_with_wrong_password_is_refused(make_endpoint, app, tmp_path):
    ep = await make_endpoint(app)
    result = await run_sipp(
        ep.ports["UDP"],
        scenario="register_digest",
        extra=["-inf", users_csv(tmp_path, "alice", "wrong")],
        time_limit=20,
    )
    assert result.returncode != 0
    assert "403" in result.errors()
    assert ep.registrar.lookup("sip:alice@127.0.0.1") == []


async def test_phone_invite_is_challenged_then_admitted_with_agent_owner(make_endpoint, app):
    ep = await make_endpoint(app)
    result = await run_sipp(
        ep.ports["UDP"],
        scenario="invite_auth",
        extra=["-au", "alice", "-ap", "secret", "-s", "1001"],
    )
    assert result.returncode == 0, result.errors()
    assert len(app.calls) == 1
    call = app.calls[0]
    assert call.auth is AuthKind.DIGEST
    assert call.owner == ("tenant-1", "alice")
    assert call.info.from_display == "Agent Alice"
    assert call.request_user == "1001"
    await wait_for(lambda: call.ended)
    assert call.end == Ended(EndCause.REMOTE_HANGUP)


async def test_trunk_call_with_builtin_uac_is_answered_and_ended_by_bye(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")
    ep = await make_endpoint(app)
    result = await run_sipp(ep.ports["UDP"], builtin="uac", calls=5, rate=20)
    assert result.returncode == 0, result.errors()
    assert result.stat("Successful call") == 5
    assert all(c.auth is AuthKind.TRUNK for c in app.calls)
    await wait_for(lambda: ep.active_calls == 0)
    assert {c.end.cause for c in app.calls if c.end} == {EndCause.REMOTE_HANGUP}


async def test_builtin_regexp_scenario_finds_address_contact_and_origin(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")
    ep = await make_endpoint(app)
    result = await run_sipp(ep.ports["UDP"], builtin="regexp", calls=2)
    assert result.returncode == 0, result.errors()


async def test_caller_cancels_while_ringing(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")
    app.behaviour = "ring"
    ep = await make_endpoint(app)
    result = await run_sipp(ep.ports["UDP"], scenario="uac_cancel")
    assert result.returncode == 0, result.errors()
    call = app.calls[0]
    await wait_for(lambda: call.ended)
    assert call.end is not None and call.end.cause is EndCause.CANCELLED
    await wait_for(lambda: any(isinstance(e, Ended) for e in app.events[call.call_id]))
    assert isinstance(app.events[call.call_id][0], Cancelled)
    with pytest.raises(CallEnded):
        await call.answer(App.answer_for(call))


async def test_hold_reinvite_is_answered_recvonly_and_app_hears_it(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")
    ep = await make_endpoint(app, reinvite_answer_timeout=0.05)
    result = await run_sipp(ep.ports["UDP"], scenario="uac_hold")
    assert result.returncode == 0, result.errors()
    call = app.calls[0]
    await wait_for(lambda: call.ended)
    reinvites = [e for e in app.events[call.call_id] if isinstance(e, ReinviteReceived)]
    assert [e.is_hold for e in reinvites] == [True, False]


async def test_app_answers_reinvite_with_its_own_sdp(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")

    async def handle(call: IncomingCall) -> None:
        local = App.answer_for(call)
        await call.answer(local)
        async for event in call.events():
            if isinstance(event, ReinviteReceived):
                assert event.offer is not None
                wanted = event.offer.direction_of(event.offer.media[0]).reverse
                event.accept(local.with_direction(wanted))

    app.custom = handle
    ep = await make_endpoint(app)
    result = await run_sipp(ep.ports["UDP"], scenario="uac_hold")
    assert result.returncode == 0, result.errors()
    assert "o=cloudcc" in result.messages()


async def test_endpoint_hangup_sends_bye(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")

    async def handle(call: IncomingCall) -> None:
        await call.answer(App.answer_for(call))
        await asyncio.sleep(0.2)
        await call.hangup()

    app.custom = handle
    ep = await make_endpoint(app)
    result = await run_sipp(ep.ports["UDP"], scenario="uac_wait_bye")
    assert result.returncode == 0, result.errors()
    await wait_for(lambda: app.calls[0].ended)
    assert app.calls[0].end == Ended(EndCause.LOCAL_HANGUP)


async def test_calls_complete_despite_packet_loss(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")
    ep = await make_endpoint(app, timers=TimerSettings(t1=0.1))
    result = await run_sipp(
        ep.ports["UDP"], builtin="uac", calls=20, rate=10, extra=["-lost", "10"], time_limit=90
    )
    # SIPp drops 10 % of what it sends and receives; retransmissions must cover it.
    assert result.stat("Successful call") >= 18, result.errors()
    assert "retrans" in result.output.lower() or result.stat("Successful call") == 20


async def test_calls_over_tcp(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")
    ep = await make_endpoint(app)
    result = await run_sipp(ep.ports["TCP"], builtin="uac", calls=5, rate=10, transport="t1")
    assert result.returncode == 0, result.errors()
    assert all(c.transport == "TCP" for c in app.calls)


async def test_info_dtmf_digits_reach_the_app(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")
    ep = await make_endpoint(app)
    result = await run_sipp(ep.ports["UDP"], scenario="uac_info_dtmf")
    assert result.returncode == 0, result.errors()
    call = app.calls[0]
    await wait_for(lambda: call.ended)
    await wait_for(lambda: any(isinstance(e, Ended) for e in app.events[call.call_id]))
    digits = [e.digit for e in app.events[call.call_id] if isinstance(e, DtmfReceived)]
    assert digits == ["1", "2", "#"]


async def test_refer_from_phone_is_accepted_and_notified(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")
    seen: list[ReferReceived] = []

    async def handle(call: IncomingCall) -> None:
        await call.answer(App.answer_for(call))
        async for event in call.events():
            if isinstance(event, ReferReceived):
                seen.append(event)
                await event.notify(200)

    app.custom = handle
    ep = await make_endpoint(app)
    result = await run_sipp(ep.ports["UDP"], scenario="uac_refer")
    assert result.returncode == 0, result.errors()
    assert len(seen) == 1
    assert seen[0].target == "sip:2002@127.0.0.1"
    assert seen[0].replaces is None


async def test_session_timer_clears_a_call_whose_refresher_went_silent(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")
    ep = await make_endpoint(app, session_expires=3, min_se=1)
    result = await run_sipp(ep.ports["UDP"], scenario="uac_session_timer", time_limit=30)
    assert result.returncode == 0, result.errors()
    call = app.calls[0]
    assert call.end == Ended(EndCause.SESSION_EXPIRED)


# ------------------------------------------------------------------- outgoing


async def test_outgoing_call_to_sipp_uas_is_answered_then_hung_up(make_endpoint):
    ep = await make_endpoint()
    uas = await SippServer(builtin="uas").start()
    try:
        offer = make_offer("127.0.0.1", 42000)
        call = await ep.call(
            f"sip:service@127.0.0.1:{uas.port}", offer, from_uri="sip:1000@cloudcc"
        )
        remote = await asyncio.wait_for(call.answered(), 10)
        assert remote is not None and remote.audio is not None
        assert remote.audio.codecs[0].name == "PCMU"
        events = [await call.next_event(2), await call.next_event(2)]
        assert isinstance(events[0], Ringing) and events[0].status == 180
        assert isinstance(events[1], Answered)
        await call.hangup()
        assert call.end == Ended(EndCause.LOCAL_HANGUP)
        assert await uas.wait(15) == 0, uas.errors()
    finally:
        await uas.stop()


async def test_outgoing_call_answers_the_carriers_digest_challenge(make_endpoint):
    ep = await make_endpoint()
    uas = await SippServer(scenario="uas_auth").start()
    try:
        call = await ep.call(
            f"sip:+15551234@127.0.0.1:{uas.port}",
            make_offer("127.0.0.1", 42002),
            credentials=Credential("carrier", "trunkpass"),
        )
        await asyncio.wait_for(call.answered(), 10)
        await call.hangup()
        assert await uas.wait(15) == 0, uas.errors() + uas.messages()[-2000:]
    finally:
        await uas.stop()


async def test_outgoing_call_to_aor_rings_every_contact_and_cancels_the_loser(make_endpoint):
    ep = await make_endpoint()
    winner = await SippServer(scenario="uas_answer").start()
    loser = await SippServer(scenario="uas_ring_cancel").start()
    try:
        now = ep.now()
        for port in (winner.port, loser.port):
            ep.registrar.register(
                "sip:agent7@cloudcc",
                [ContactRequest(f"sip:agent7@127.0.0.1:{port}")],
                300,
                f"reg-{port}",
                1,
                now,
                source=("127.0.0.1", port),
            )
        call = await ep.call("sip:agent7@cloudcc", make_offer("127.0.0.1", 42004))
        await asyncio.wait_for(call.answered(), 10)
        assert await loser.wait(15) == 0, loser.errors()  # it got CANCEL and sent 487
        await call.hangup()
        assert await winner.wait(15) == 0, winner.errors()
    finally:
        await winner.stop()
        await loser.stop()


async def test_outgoing_call_to_unknown_port_fails_with_timeout(make_endpoint):
    ep = await make_endpoint(timers=TimerSettings(t1=0.02))
    call = await ep.call(f"sip:nobody@127.0.0.1:{free_port()}", make_offer("127.0.0.1", 42006))
    with pytest.raises(CallFailed) as info:
        await asyncio.wait_for(call.answered(), 10)
    assert info.value.status == 408
    assert call.end is not None and call.end.cause is EndCause.FAILED


async def test_trunk_registers_with_the_carrier_refreshes_and_unregisters(make_endpoint):
    ep = await make_endpoint()
    registrar = await SippServer(scenario="uas_registrar").start()
    try:
        registration = await ep.register(
            f"sip:127.0.0.1:{registrar.port}",
            "sip:trunk1@carrier.example",
            credentials=Credential("trunk1", "trunkpw"),
            expires=3,
        )
        await asyncio.wait_for(registration.wait_registered(), 10)
        assert registration.registered and registration.last_status == 200
        first_expiry = registration.expires_at
        await wait_for(lambda: registration.expires_at != first_expiry, 10)  # refreshed
        await registration.stop()
        assert await registrar.wait(15) == 0, registrar.errors() + registrar.messages()[-1500:]
    finally:
        await registrar.stop()


async def test_update_offer_and_sdp_less_session_refresh(make_endpoint, app):
    app.trunk_sources.add("127.0.0.1")
    ep = await make_endpoint(app, reinvite_answer_timeout=0.05)
    result = await run_sipp(ep.ports["UDP"], scenario="uac_update")
    assert result.returncode == 0, result.errors()
    call = app.calls[0]
    await wait_for(lambda: call.ended)
    offers = [e for e in app.events[call.call_id] if isinstance(e, ReinviteReceived)]
    assert [(e.method, e.is_hold) for e in offers] == [("UPDATE", True)]
