"""GRASP-01 "CORS support" lines (L64-L67): on ALL responses, whatever answered them.

The headers are read from real HTTP answers of a relay process: the HTML root, NIP-11, a git
advertisement, a landing page, a refused push, GRASP-06 paths and several kinds of 404. A real
browser's view is in test_browser_cors.py.
"""

from __future__ import annotations

import pytest

from grasp.nostr.bech32 import npub_encode
from tests.conformance.support import Grasp, fresh, http
from tests.support.nip34 import Key

pytestmark = pytest.mark.slow

#: S15.3: the request headers browser git clients send, named (upstream sends the same list).
ALLOWED_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Git-Protocol",
    "Accept",
    "Content-Encoding",
    "X-Requested-With",
)


def _answers(grasp: Grasp) -> dict[str, object]:
    """One response of each kind the relay gives (name -> urllib3 response)."""
    owner, d = Key(), fresh()
    grasp.publish(grasp.announcement(owner, d))
    repo = grasp.clone_url(owner, d)
    stranger = npub_encode(Key().pubkey)
    nip11 = {"Accept": "application/nostr+json"}
    push_body = b"0000"
    return {
        "root page": http("GET", grasp.http_url + "/"),
        "nip-11": http("GET", grasp.http_url + "/", headers=nip11),
        "advertisement": http("GET", repo + "/info/refs?service=git-upload-pack"),
        "advertisement HEAD": http("HEAD", repo + "/info/refs?service=git-upload-pack"),
        "landing page": http("GET", repo),
        "refused push": http(
            "POST",
            repo + "/git-receive-pack",
            body=push_body,
            headers={"Content-Type": "application/x-git-receive-pack-request"},
        ),
        "unknown repository": http("GET", f"{grasp.http_url}/{stranger}/x.git/info/refs"),
        "audit's probe": http(
            "GET", grasp.http_url + "/npub1test/nonexistent.git/info/refs?service=git-upload-pack"
        ),
        "unknown path": http("GET", grasp.http_url + "/no/such/thing"),
        "grasp-06 empty": http(
            "GET", grasp.prs_url(Key(), fresh()) + "/info/refs?service=git-upload-pack"
        ),
        "status": http("GET", grasp.http_url + "/status.json"),
        "metrics": http("GET", grasp.http_url + "/metrics"),
        "wrong method": http("PUT", grasp.http_url + "/"),
    }


@pytest.fixture(scope="module")
def answers(grasp: Grasp) -> dict[str, object]:
    return _answers(grasp)


def test_grasp01_l64_allow_origin_star_on_all_responses(answers):
    """L64: ``Access-Control-Allow-Origin: *``."""
    assert {name: r.headers.get("Access-Control-Allow-Origin") for name, r in answers.items()} == {
        name: "*" for name in answers
    }
    assert {200, 404, 405} <= {r.status for r in answers.values()}  # really all kinds


def test_grasp01_l65_allow_methods_get_post_on_all_responses(answers):
    """L65: ``Access-Control-Allow-Methods`` lists GET and POST."""
    for name, response in answers.items():
        methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
        assert {"GET", "POST"} <= methods, name


def test_grasp01_l66_allow_headers_name_content_type_and_what_git_clients_send(answers):
    """L66: ``Content-Type`` at least, *named* (a browser never lets ``*`` cover
    ``Authorization``) — with ``Git-Protocol`` and the rest that browser git clients send."""
    for name, response in answers.items():
        allowed = [h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")]
        assert allowed == list(ALLOWED_REQUEST_HEADERS), name
        assert "Content-Type" in allowed and "*" not in allowed


@pytest.mark.parametrize(
    "path",
    ["/", "/{npub}/repo.git/info/refs?service=git-upload-pack", "/prs/{npub}/x.git", "/nowhere"],
)
def test_grasp01_l67_options_is_204_no_content(grasp: Grasp, path):
    """L67: ``OPTIONS`` → ``204 No Content`` (a browser's preflight), with the CORS headers."""
    url = grasp.http_url + path.format(npub=npub_encode(Key().pubkey))
    answer = http(
        "OPTIONS",
        url,
        headers={
            "Origin": "https://client.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "git-protocol, authorization",
        },
    )
    assert answer.status == 204 and answer.data == b""
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
