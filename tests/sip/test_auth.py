"""Digest authentication: RFC 2617 and RFC 7616 vectors, nonces, stale, verification."""

from __future__ import annotations

import pytest

from cloudcc.sip.auth import (
    Algorithm,
    Credential,
    DigestAuthenticator,
    NonceIssuer,
    NonceStatus,
    Verdict,
    authorize,
    compute_ha1,
    compute_response,
    parse_authorization,
    parse_challenge,
    pick_challenge,
)
from cloudcc.sip.exceptions import AuthError


def test_rfc2617_section_3_5_example():
    ha1 = compute_ha1(Algorithm.MD5, "Mufasa", "testrealm@host.com", "Circle Of Life")
    response = compute_response(
        Algorithm.MD5, ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "GET", "/dir/index.html",
        qop="auth", nc="00000001", cnonce="0a4f113b",
    )  # fmt: skip
    assert response == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        (Algorithm.MD5, "8ca523f5e9506fed4657c9700eebdbec"),
        (Algorithm.SHA256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1_examples(algorithm, expected):
    ha1 = compute_ha1(algorithm, "Mufasa", "http-auth@example.org", "Circle of Life")
    response = compute_response(
        algorithm, ha1, "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "GET", "/dir/index.html",
        qop="auth", nc="00000001", cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )  # fmt: skip
    assert response == expected


def test_challenge_lists_sha256_first_then_md5():
    auth = DigestAuthenticator()
    values = auth.challenges("example.com", 10.0)
    assert [parse_challenge(v).algorithm for v in values] == [Algorithm.SHA256, Algorithm.MD5]
    assert pick_challenge(values).algorithm is Algorithm.SHA256


@pytest.mark.parametrize("algorithm", [Algorithm.MD5, Algorithm.SHA256, Algorithm.SHA256_SESS])
def test_client_answer_verifies_with_password_or_ha1(algorithm):
    server = DigestAuthenticator((algorithm,))
    challenge = parse_challenge(server.challenges("pbx.example", 100.0)[0])
    answer = authorize(challenge, "REGISTER", "sip:pbx.example", "1001", "pw")
    parsed = parse_authorization(answer.header_value())
    by_password = Credential("1001", "pw")
    by_ha1 = Credential(
        "1001", ha1={algorithm.base.value: compute_ha1(algorithm, "1001", "pbx.example", "pw")}
    )
    assert server.verify(parsed, "REGISTER", by_password, 101.0) is Verdict.OK
    assert server.verify(parsed, "REGISTER", by_ha1, 101.0) is Verdict.OK
    assert server.verify(parsed, "REGISTER", Credential("1001", "other"), 101.0) is Verdict.FAILED
    assert server.verify(parsed, "INVITE", by_password, 101.0) is Verdict.FAILED


def test_expired_nonce_with_right_password_is_stale():
    server = DigestAuthenticator((Algorithm.MD5,), nonce_lifetime=30, nonce_window=1)
    challenge = parse_challenge(server.challenges("r", 0.0)[0])
    answer = parse_authorization(authorize(challenge, "INVITE", "sip:x@r", "u", "p").header_value())
    assert server.verify(answer, "INVITE", Credential("u", "p"), 30.0) is Verdict.OK
    assert server.verify(answer, "INVITE", Credential("u", "p"), 32.0) is Verdict.STALE
    assert server.verify(answer, "INVITE", Credential("u", "bad"), 32.0) is Verdict.FAILED
    assert "stale=TRUE" in server.challenges("r", 32.0, stale=True)[0]


def test_nonce_is_shared_within_its_window_and_changes_after():
    issuer = NonceIssuer(60, window=30)
    assert issuer.issue(31.0) == issuer.issue(59.9)  # retransmitted challenges match
    assert issuer.issue(60.0) != issuer.issue(59.9)
    assert issuer.check(issuer.issue(31.0), 31.0 + 89) is NonceStatus.VALID
    assert issuer.check(issuer.issue(31.0), 31.0 + 91) is NonceStatus.STALE


def test_forged_or_foreign_nonce_is_invalid():
    issuer = NonceIssuer(60)
    nonce = issuer.issue(5.0)
    assert issuer.check(nonce, 6.0) is NonceStatus.VALID
    assert NonceIssuer(60).check(nonce, 6.0) is NonceStatus.INVALID  # another secret
    stamp, mac = nonce.split(".")
    assert issuer.check(f"{int(stamp, 16) + 1:x}.{mac}", 6.0) is NonceStatus.INVALID
    assert issuer.check("garbage", 6.0) is NonceStatus.INVALID


def test_authorization_header_round_trips_with_quotes_and_commas():
    value = (
        'Digest username="bob", realm="biloxi.com", nonce="dcd98b,7102", uri="sip:bob@biloxi.com",'
        ' response="245f23415f11432b3434341c022", algorithm=MD5, qop=auth, nc=00000001,'
        ' cnonce="0a4f113b", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    parsed = parse_authorization(value)
    assert parsed.nonce == "dcd98b,7102" and parsed.opaque == "5ccc069c403ebaf9f0171e9517f40e41"
    assert parse_authorization(parsed.header_value()) == parsed


@pytest.mark.parametrize(
    "bad",
    ["Basic dXNlcjpwYXNz", 'Digest username="a"', 'Digest username="a", realm="r", nonce="n", '
     'uri="u", response="x", qop=auth', "NoOneKnowsThisScheme opaque-data=here"],
)  # fmt: skip
def test_malformed_authorization_raises_auth_error(bad):
    with pytest.raises(AuthError):
        parse_authorization(bad)


def test_unknown_algorithm_is_refused():
    with pytest.raises(AuthError):
        parse_challenge('Digest realm="r", nonce="n", algorithm=SHA-1')
