"""The location service (RFC 3261 §10.3): bindings, expiry, ordering, listeners."""

from __future__ import annotations

import pytest

from cloudcc.sip.exceptions import RegistrationError
from cloudcc.sip.registrar import ContactRequest, Registrar, aor_key


def contact(uri: str, expires: int | None = None, q: float | None = None) -> ContactRequest:
    return ContactRequest(uri, expires, q)


def test_several_contacts_per_aor_best_q_first():
    r = Registrar()
    r.register("sip:1001@pbx", [contact("sip:1001@10.0.0.1", q=0.5)], 600, "c1", 1, 0.0)
    r.register(
        "sip:1001@pbx", [contact("sip:1001@10.0.0.2;transport=tcp", q=1.0)], 600, "c2", 1, 1.0
    )
    bindings = r.lookup("sip:1001@pbx", 2.0)
    assert [b.contact for b in bindings] == ["sip:1001@10.0.0.2;transport=tcp", "sip:1001@10.0.0.1"]


def test_bindings_expire_and_listeners_hear_it():
    r = Registrar(min_expires=10)
    heard: list[tuple[str, int]] = []
    r.subscribe(lambda aor, bindings: heard.append((aor, len(bindings))))
    r.register("sip:1001@pbx", [contact("sip:1001@10.0.0.1")], 60, "c1", 1, 0.0)
    r.register("sip:1001@pbx", [contact("sip:1001@10.0.0.1")], 60, "c1", 2, 30.0)  # refresh
    assert heard == [("sip:1001@pbx", 1)]  # a refresh is not a change
    assert r.next_expiry() is not None
    assert r.expire(89.0) == []
    assert r.expire(91.0) == ["sip:1001@pbx"]
    assert r.lookup("sip:1001@pbx", 91.0) == []
    assert heard[-1] == ("sip:1001@pbx", 0)


def test_interval_too_brief_is_423_with_min_expires():
    r = Registrar(min_expires=60)
    with pytest.raises(RegistrationError) as info:
        r.register("sip:a@b", [contact("sip:a@h")], 30, "c", 1, 0.0)
    assert (info.value.status, info.value.min_expires) == (423, 60)


def test_expires_zero_removes_and_wildcard_removes_all():
    r = Registrar()
    r.register("sip:a@b", [contact("sip:a@h1"), contact("sip:a@h2")], 600, "c", 1, 0.0)
    r.register("sip:a@b", [contact("sip:a@h1", expires=0)], None, "c", 2, 1.0)
    assert [b.contact for b in r.lookup("sip:a@b")] == ["sip:a@h2"]
    with pytest.raises(RegistrationError):
        r.register("sip:a@b", None, 600, "c", 3, 2.0)  # "*" needs Expires: 0
    r.register("sip:a@b", None, 0, "c", 3, 2.0)
    assert r.lookup("sip:a@b") == []


def test_out_of_order_register_on_the_same_call_id_is_500():
    r = Registrar()
    r.register("sip:a@b", [contact("sip:a@h")], 600, "c", 5, 0.0)
    with pytest.raises(RegistrationError) as info:
        r.register("sip:a@b", [contact("sip:a@h")], 600, "c", 4, 1.0)
    assert info.value.status == 500
    r.register("sip:a@b", [contact("sip:a@h")], 600, "other-call-id", 1, 1.0)  # a new UA instance


def test_max_expires_caps_and_contact_param_wins_over_header():
    r = Registrar(max_expires=3600)
    (b,) = r.register("sip:a@b", [contact("sip:a@h", expires=99999)], 120, "c", 1, 0.0)
    assert b.expires_in(0.0) == 3600
    (b,) = r.register("sip:x@b", [contact("sip:x@h")], 120, "c", 1, 0.0)
    assert b.expires_in(0.0) == 120


def test_too_many_contacts_per_aor_is_refused():
    r = Registrar(max_bindings_per_aor=2)
    r.register("sip:a@b", [contact("sip:a@h1"), contact("sip:a@h2")], 600, "c", 1, 0.0)
    with pytest.raises(RegistrationError) as info:
        r.register("sip:a@b", [contact("sip:a@h3")], 600, "d", 1, 0.0)
    assert info.value.status == 403


def test_aor_keys_ignore_case_of_host_and_escapes():
    assert (
        aor_key("sip:%61lice@PBX.example")
        == aor_key("alice@pbx.example")
        == "sip:alice@pbx.example"
    )


def test_bindings_of_a_closed_connection_are_dropped():
    r = Registrar()
    flow = object()
    r.register("sip:a@b", [contact("sip:a@h;transport=ws")], 600, "c", 1, 0.0, flow=flow)
    r.register("sip:a@b", [contact("sip:a@h2")], 600, "d", 1, 0.0)
    assert r.drop_flow(flow) == ["sip:a@b"]
    assert [b.contact for b in r.lookup("sip:a@b")] == ["sip:a@h2"]


def test_bindings_of_other_nodes_are_adopted_beside_this_nodes_own():
    from cloudcc.sip.registrar import Binding

    r = Registrar(min_expires=10)
    registered: list[tuple[str, int]] = []
    r.on_register = lambda aor, bindings: registered.append((aor, len(bindings)))
    r.register("sip:1001@pbx", [contact("sip:1001@10.0.0.1")], 60, "c1", 1, 0.0)
    r.register("sip:1001@pbx", [contact("sip:1001@10.0.0.1")], 60, "c1", 2, 5.0)  # refresh
    assert registered == [("sip:1001@pbx", 1), ("sip:1001@pbx", 1)]  # refreshes heard too

    def remote(uri: str, expires_at: float) -> Binding:
        return Binding("x", uri, expires_at, "", 0, 0.0, path=("<sip:edge;lr>",), node="n2")

    path = ("<sip:edge;lr>",)
    r.adopt("sip:1001@pbx", [remote("sip:1001@10.0.0.9", 50.0), remote("sip:1001@10.0.0.1", 50.0)],
            6.0)  # fmt: skip
    live = {b.contact: b for b in r.lookup("sip:1001@pbx", 7.0)}
    assert set(live) == {"sip:1001@10.0.0.1", "sip:1001@10.0.0.9"}
    assert live["sip:1001@10.0.0.1"].node is None  # this node's own binding wins
    assert live["sip:1001@10.0.0.9"].node == "n2" and live["sip:1001@10.0.0.9"].path == path
    # Adopting again replaces the remote ones (gone on the other node), never its own.
    r.adopt("sip:1001@pbx", [], 8.0)
    assert [b.contact for b in r.lookup("sip:1001@pbx", 8.0)] == ["sip:1001@10.0.0.1"]
    # A remote one expires like any other; a REGISTER here for its contact replaces it.
    r.adopt("sip:2002@pbx", [remote("sip:2002@10.0.0.5", 20.0)], 8.0)
    assert r.lookup("sip:2002@pbx", 21.0) == []
    r.adopt("sip:2002@pbx", [remote("sip:2002@10.0.0.5", 90.0)], 21.0)
    r.register("sip:2002@pbx", [contact("sip:2002@10.0.0.5")], 60, "c9", 1, 22.0)
    assert [b.node for b in r.lookup("sip:2002@pbx", 23.0)] == [None]
