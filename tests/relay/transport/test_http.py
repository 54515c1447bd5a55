"""S10.2 NIP-11, CORS on every response, OPTIONS -> 204, the HTML page and the reserved mounts."""

from __future__ import annotations

import json
from wsgiref.util import setup_testing_defaults

import pytest

from grasp.nostr.event import generate_secret_key, npub_encode, public_key
from grasp.relay.config import Config
from grasp.relay.transport.connection import WebSocketLimits
from grasp.relay.transport.http import (
    GIT_MOUNT,
    METRICS_MOUNT,
    STATUS_JSON_MOUNT,
    STATUS_MOUNT,
    RelayApp,
    git_repository_path,
)
from grasp.relay.transport.nip11 import relay_information
from grasp.relay.transport.websocket import UPGRADE_KEY, WebSocketUpgrade

NPUB = npub_encode(public_key(generate_secret_key()))
GIT_PATH = f"/{NPUB}/my-repo.git/info/refs"
RESERVED = ["/metrics", "/status", "/status.json", GIT_PATH]


def never_called(connection):
    raise AssertionError("no websocket expected")


def make_app(config: Config = Config(), mounts=None) -> RelayApp:
    return RelayApp(info=relay_information(config), session_factory=never_called, mounts=mounts)


def call(app, path="/", method="GET", headers=None):
    environ: dict = {"REQUEST_METHOD": method, "PATH_INFO": path}
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    setup_testing_defaults(environ)
    captured = {}

    def start_response(status, response_headers, exc_info=None):
        captured["status"] = status
        captured["headers"] = response_headers

    body = b"".join(app(environ, start_response))
    return captured["status"], dict(captured["headers"]), captured["headers"], body


def assert_cors(headers: dict) -> None:
    """S15.3, GRASP-01 L64-L66: the request headers are named (browsers never let ``*``
    cover ``Authorization``), and what git clients send is among them."""
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert {"GET", "POST"} <= set(headers["Access-Control-Allow-Methods"].split(", "))
    allowed = headers["Access-Control-Allow-Headers"].split(", ")
    assert allowed == [
        "Authorization",
        "Content-Type",
        "Git-Protocol",
        "Accept",
        "Content-Encoding",
        "X-Requested-With",
    ]
    assert "*" not in headers["Access-Control-Expose-Headers"]


def test_s10_2_nip11_document_for_nostr_json_accept():
    config = Config(max_message_bytes=100_000, max_subscriptions=7, max_limit=42).with_bound_port(
        4321
    )
    status, headers, _, body = call(make_app(config), headers={"Accept": "application/nostr+json"})
    assert status == "200 OK" and headers["Content-Type"] == "application/nostr+json"
    assert_cors(headers)
    info = json.loads(body)
    assert info["supported_nips"] == [1, 11, 34, 77]  # S17.3: NIP-77 unless turned off
    assert info["supported_grasps"] == ["GRASP-01", "GRASP-02", "GRASP-06"]  # S17.1 discovery
    assert info["name"] and "127.0.0.1:4321" in info["description"]
    assert info["software"].startswith("https://") and info["version"] == "0.1.0"
    assert info["limitation"]["max_message_length"] == 100_000
    assert info["limitation"]["max_subscriptions"] == 7
    assert info["limitation"]["max_limit"] == 42
    assert info["limitation"]["max_subid_length"] == 64


def test_s17_1_grasp_02_is_advertised_unless_every_peer_is_turned_off():
    def grasps(**fields: object) -> list[str]:
        fields = {"grasp06": False, "discover_relays": False, **fields}
        config = Config(**fields)  # type: ignore[arg-type]
        _, _, _, body = call(make_app(config), headers={"Accept": "application/nostr+json"})
        return list(json.loads(body)["supported_grasps"])

    assert grasps() == ["GRASP-01"]
    assert grasps(discover_relays=True) == ["GRASP-01", "GRASP-02"]
    assert grasps(bootstrap_relays=("wss://peer.example",)) == ["GRASP-01", "GRASP-02"]
    assert grasps(sync_sources=("wss://other.example",)) == ["GRASP-01", "GRASP-02"]
    # GRASP-05 comes before GRASP-02, as the upstream relay orders them
    assert grasps(discover_relays=True, archive_all=True) == ["GRASP-01", "GRASP-05", "GRASP-02"]


@pytest.mark.parametrize(
    "accept", ["text/html, application/nostr+json;q=0.9", "Application/Nostr+JSON"]
)
def test_s10_2_nip11_accept_header_in_a_list_or_other_case(accept):
    _, headers, _, _ = call(make_app(), headers={"Accept": accept})
    assert headers["Content-Type"] == "application/nostr+json"


def test_plain_get_serves_a_small_html_page_with_cors():
    status, headers, _, body = call(
        make_app(), headers={"Accept": "text/html", "Host": "relay.test:7777"}
    )
    assert status == "200 OK" and headers["Content-Type"].startswith("text/html")
    assert_cors(headers)
    page = body.decode()
    assert page.startswith("<!DOCTYPE html>") and "ws://relay.test:7777/" in page
    assert "application/nostr+json" in page


def test_html_page_escapes_the_description():
    app = RelayApp(info={"name": "<b>x</b>", "description": "a & b"}, session_factory=never_called)
    _, _, _, body = call(app)
    assert b"&lt;b&gt;x&lt;/b&gt;" in body and b"a &amp; b" in body


def test_head_has_headers_and_length_but_no_body():
    _, get_headers, _, get_body = call(make_app(), headers={"Accept": "application/nostr+json"})
    status, headers, _, body = call(
        make_app(), method="HEAD", headers={"Accept": "application/nostr+json"}
    )
    assert status == "200 OK" and body == b""
    assert headers["Content-Length"] == str(len(get_body)) == get_headers["Content-Length"]


@pytest.mark.parametrize("path", ["/", "/anything", GIT_PATH])
def test_s10_2_options_is_204_with_cors_on_any_path(path):
    status, headers, _, body = call(make_app(), path=path, method="OPTIONS")
    assert status == "204 No Content" and body == b""
    assert_cors(headers)


def test_post_to_root_is_405():
    status, headers, _, _ = call(make_app(), method="POST")
    assert status.startswith("405") and "GET" in headers["Allow"]
    assert_cors(headers)


@pytest.mark.parametrize("path", [*RESERVED, "/npub1x/repo.git", "/favicon.ico"])
def test_reserved_and_unknown_paths_are_404_until_mounted(path):
    status, headers, _, _ = call(make_app(), path=path)
    assert status == "404 Not Found"
    assert_cors(headers)


def recording_app(name: str, calls: list):
    def app(environ, start_response):
        calls.append((name, environ["PATH_INFO"]))
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Access-Control-Allow-Origin", "*")]
        )
        return [name.encode()]

    return app


def test_mounted_apps_get_their_paths_and_responses_keep_cors_once():
    calls: list = []
    app = make_app(
        mounts={
            GIT_MOUNT: recording_app("git", calls),
            METRICS_MOUNT: recording_app("metrics", calls),
            STATUS_MOUNT: recording_app("status", calls),
        }
    )
    app.mount(STATUS_JSON_MOUNT, recording_app("status.json", calls))
    for path in RESERVED:
        status, headers, raw_headers, _ = call(app, path=path)
        assert status == "200 OK"
        assert_cors(headers)
        assert [n for n, _ in raw_headers].count("Access-Control-Allow-Origin") == 1
    assert calls == [
        ("metrics", "/metrics"),
        ("status", "/status"),
        ("status.json", "/status.json"),
        ("git", GIT_PATH),
    ]
    assert call(app, path="/metrics/sub")[0] == "200 OK"
    assert call(app, path="/metricsx")[0] == "404 Not Found"


@pytest.mark.parametrize(
    "path, expected",
    [
        (f"/{NPUB}/repo.git", True),
        (f"/{NPUB}/repo.git/git-upload-pack", True),
        (f"/{NPUB}/with.dots-and_x.git/info/refs", True),
        (f"/{NPUB}/repo", False),
        (f"/{NPUB}/repo.gitx/info/refs", False),
        ("/npub1short/repo.git", False),
        (f"/{NPUB}/a/b.git", False),
        (f"/x{NPUB}/repo.git", False),
    ],
)
def test_git_mount_matcher(path, expected):
    assert git_repository_path(path) is expected


def upgrade_environ(**overrides):
    headers = {
        "Upgrade": "websocket",
        "Connection": "keep-alive, Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    headers.update(overrides)
    return headers


def test_websocket_upgrade_on_root_is_accepted_with_the_session_factory():
    limits = WebSocketLimits(max_message_bytes=1234)
    app = RelayApp(info={}, session_factory=never_called, websocket_limits=limits)
    environ: dict = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    for name, value in upgrade_environ().items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    upgrade = environ[UPGRADE_KEY] = WebSocketUpgrade()
    assert list(app(environ, lambda *a: None)) == []
    assert upgrade.accepted and upgrade.factory is never_called and upgrade.limits is limits


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"Sec-WebSocket-Version": "8"}, b"unsupported websocket version"),
        ({"Sec-WebSocket-Key": "not base64!"}, b"Sec-WebSocket-Key is not base64"),
        ({"Sec-WebSocket-Key": "c2hvcnQ="}, b"Sec-WebSocket-Key must be 16 bytes"),
    ],
)
def test_bad_websocket_handshake_is_400(overrides, reason):
    environ_headers = upgrade_environ(**overrides)
    environ: dict = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    for name, value in environ_headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    environ[UPGRADE_KEY] = WebSocketUpgrade()
    setup_testing_defaults(environ)
    captured = {}
    body = b"".join(
        make_app()(environ, lambda s, h, e=None: captured.update(status=s, headers=dict(h)))
    )
    assert captured["status"] == "400 Bad Request" and reason in body
    assert_cors(captured["headers"])


def _info(config: Config) -> dict:
    _, _, _, body = call(make_app(config), headers={"Accept": "application/nostr+json"})
    return json.loads(body)


def test_s15_2_nip11_lists_acceptance_criteria_and_omits_curation_by_default():
    info = _info(Config().with_bound_port(4321))
    assert "127.0.0.1:4321" in info["repo_acceptance_criteria"]
    assert "/prs/" in info["repo_acceptance_criteria"]  # GRASP-06 is on by default
    assert "curation" not in info and "contact" not in info and "icon" not in info


def test_s15_2_nip11_fields_come_from_the_options():
    config = Config(
        relay_name="Git Haven",
        relay_description="repositories of the haven",
        relay_contact="mailto:ops@haven.example",
        relay_icon="https://haven.example/icon.png",
        repo_acceptance_criteria="only friends",
        grasp06=False,
    )
    info = _info(config)
    assert (info["name"], info["description"]) == ("Git Haven", "repositories of the haven")
    assert (info["contact"], info["icon"]) == ("mailto:ops@haven.example", config.relay_icon)
    assert info["repo_acceptance_criteria"] == "only friends"
    assert info["supported_grasps"] == ["GRASP-01", "GRASP-02"]


@pytest.mark.parametrize(
    "rules",
    [{"repo_allow": ("mine",)}, {"repo_deny": ("spam",)}, {"deny_pubkeys": ("ab" * 32,)}],
    ids=["allow", "deny", "pubkey"],
)
def test_s15_2_curation_is_present_exactly_when_a_rule_is_active(rules):
    info = _info(Config(**rules))
    assert info["curation"].startswith("Curated: ")
    assert "curation policy" in info["repo_acceptance_criteria"]
    assert "curation" not in _info(Config(event_rate_limit=5))  # spam prevention, not curation
