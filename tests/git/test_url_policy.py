"""S3.4 URL policy: refused schemes, credentials and address classes; pinning to the checked
address."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from grasp.git import FetchError, FetchPolicy, check_url, fetch_oids
from grasp.git.url_policy import address_refusal
from tests.git.conftest import QUICK, Source
from tests.support.gitrepo import self_signed_cert
from tests.support.gitserver import GitServer

STRICT = FetchPolicy()


def refusal(url: str, policy: FetchPolicy = STRICT, **kw) -> FetchError:
    with pytest.raises(FetchError) as info:
        check_url(url, policy, **kw)
    return info.value


@pytest.mark.parametrize(
    "url, why",
    [
        ("file:///etc/passwd", "scheme"),
        ("ssh://git@example.com/repo.git", "scheme"),
        ("ftp://example.com/repo.git", "scheme"),
        ("example.com/repo.git", "scheme"),
        ("git://example.com/repo.git", "disabled"),
        ("http://user:secret@example.com/repo.git", "userinfo"),
        ("https://token@example.com/repo.git", "userinfo"),
        ("https://example.com/repo.git?x=1", "query"),
        ("https://example.com/repo.git#frag", "query or fragment"),
        ("https:///repo.git", "no host"),
        ("https://example.com:99999/repo.git", "malformed"),
        ("https://exa mple.com/repo.git", "whitespace"),
        ("https://example.com/\nrepo.git", "control"),
    ],
)
def test_s3_4_refused_urls(url: str, why: str):
    error = refusal(url)
    assert error.reason == "policy"
    assert why in error.detail


def test_s3_4_git_scheme_is_refused_even_when_enabled_because_it_cannot_be_pinned():
    error = refusal("git://example.com/repo.git", FetchPolicy(allow_git_scheme=True))
    assert error.reason == "policy" and "not supported" in error.detail


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1.2.3",
        "[::1]",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "[fe80::1]",
        "224.0.0.1",
        "0.0.0.0",
        "[::]",
        "100.64.0.1",
        "240.0.0.1",
        "[::ffff:127.0.0.1]",
        "[2002:7f00:1::1]",
        "[64:ff9b::a00:1]",
        "[fc00::1]",
    ],
)
def test_s3_4_non_global_addresses_are_refused_without_the_allow_flag(host: str):
    error = refusal(f"http://{host}/repo.git")
    assert error.reason == "policy"
    assert "address" in error.detail
    pinned = check_url(f"http://{host}/repo.git", FetchPolicy(allow_private=True)).address
    assert ipaddress.ip_address(pinned) == ipaddress.ip_address(host.strip("[]"))


def test_s3_4_host_names_are_checked_after_resolution():
    """localhost resolves (from /etc/hosts, no network) to loopback addresses only."""
    error = refusal("http://localhost/repo.git")
    assert error.reason == "policy" and "loopback" in error.detail


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111"])
def test_s3_4_global_addresses_pass(address: str):
    assert address_refusal(address, STRICT) is None


def test_allowed_networks_admit_exactly_their_addresses():
    policy = FetchPolicy(allowed_networks=("127.0.0.1/32", "10.1.0.0/16"))
    assert address_refusal("127.0.0.1", policy) is None
    assert address_refusal("10.1.200.3", policy) is None
    assert "loopback" in address_refusal("127.0.0.2", policy)
    assert "private" in address_refusal("10.2.0.1", policy)
    with pytest.raises(ValueError):
        FetchPolicy(allowed_networks=("not-a-network",))


def test_s3_4_the_first_allowed_address_is_pinned():
    answers = {"mixed.test": ["10.0.0.7", "93.184.216.34", "93.184.216.35"]}
    checked = check_url(
        "https://mixed.test/r.git", STRICT, resolve=lambda host, port: answers[host]
    )
    assert (checked.host, checked.port, checked.address) == ("mixed.test", 443, "93.184.216.34")


def test_s3_4_a_name_with_only_refused_addresses_is_refused_with_every_reason():
    error = refusal("https://internal.test/r.git", resolve=lambda host, port: ["10.0.0.7", "::1"])
    assert error.reason == "policy"
    assert "10.0.0.7 is a private" in error.detail and "::1 is a loopback" in error.detail


@pytest.mark.parametrize("answer", [OSError("NXDOMAIN"), []])
def test_unresolvable_names_are_a_dns_error(answer):
    def resolve(host, port):
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert refusal("https://nowhere.test/r.git", resolve=resolve).reason == "dns"


def test_s3_4_refused_url_is_never_contacted(server: GitServer, source: Source, target: Path):
    with pytest.raises(FetchError) as info:
        fetch_oids(target, server.url("src.git"), [source.main[-1]], policy=STRICT, limits=QUICK)
    assert info.value.reason == "policy"
    assert server.requests == []


def test_s3_4_connection_goes_to_the_checked_address_not_a_fresh_dns_answer(
    server: GitServer, source: Source, target: Path
):
    """DNS rebinding: the name resolves once; later answers (127.0.0.2) are never used."""
    answers = iter([["127.0.0.1"]] + [["127.0.0.2"]] * 10)
    calls = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    policy = FetchPolicy(allowed_networks=("127.0.0.1/32",))
    url = f"http://rebind.test:{server.port}/src.git"
    assert fetch_oids(
        target, url, [source.main[-1]], policy=policy, limits=QUICK, resolve=resolve
    ) == [source.main[-1]]
    assert calls == ["rebind.test"]
    assert {r.host for r in server.requests} == {f"rebind.test:{server.port}"}, (
        "Host header keeps the name"
    )


@pytest.fixture
def tls_server(source: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """HTTPS for the name pinned.test, trusted through SSL_CERT_FILE (no system trust change)."""
    cert, key = self_signed_cert(tmp_path, "pinned.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with GitServer(source.root, tls=(cert, key)) as server:
        yield server


LOOPBACK_ONLY = FetchPolicy(allowed_networks=("127.0.0.1/32",))


def to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def test_s3_4_https_to_the_pinned_address_still_verifies_the_host_name(
    tls_server: GitServer, source: Source, target
):
    url = f"https://pinned.test:{tls_server.port}/src.git"
    fetched = fetch_oids(
        target, url, [source.main[-1]], policy=LOOPBACK_ONLY, limits=QUICK, resolve=to_loopback
    )
    assert fetched == [source.main[-1]]
    assert {r.host for r in tls_server.requests} == {f"pinned.test:{tls_server.port}"}


def test_https_certificate_for_another_name_is_a_tls_error(
    tls_server: GitServer, source: Source, target
):
    url = f"https://other.test:{tls_server.port}/src.git"
    with pytest.raises(FetchError) as info:
        fetch_oids(
            target, url, [source.main[-1]], policy=LOOPBACK_ONLY, limits=QUICK, resolve=to_loopback
        )
    assert info.value.reason == "tls"
    assert tls_server.requests == [], "no HTTP request was sent over the unverified connection"
