"""docs/deploy/nginx.conf for real: nginx with TLS in front of a relay started by its CLI.

The relay's public authority is nginx's (``--domain 127.0.0.1:<nginx port>``), so announcements
list ``https://`` and ``wss://`` URLs of the proxy (S10.4) and everything below goes through
nginx over TLS, trusting the test's own certificate: NIP-11 chosen by the Accept header (S10.2),
publishing and a live REQ over ``wss://`` (S10.1), ``git push`` authorised against a held state
(S10.6) that releases it (S1.2, S8), ``git clone`` back (S10.5), a push larger than nginx's
default body limit, and ``/metrics`` refused from outside as docs/deployment.rst says.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from grasp.nostr.bech32 import npub_encode
from tests.support.gitrepo import RepoBuilder, for_each_ref, git
from tests.support.nginx import (
    MISSING,
    NginxProcess,
    TlsRelayClient,
    free_ports,
    nginx_available,
    render_site,
    tls_certificate,
)
from tests.support.nip34 import Key
from tests.support.relay import RelayProcess

DOC_CONF = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "nginx.conf"
HELD = "purgatory: won't be served until git data arrives"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not nginx_available(), reason=MISSING)]


@dataclass
class Deployment:
    relay: RelayProcess
    nginx: NginxProcess
    ca: Path
    port: int
    http_port: int

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"https://{self.domain}"

    @property
    def ws_url(self) -> str:
        return f"wss://{self.domain}/"

    def client(self) -> TlsRelayClient:
        return TlsRelayClient(self.ws_url, self.ca)

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        """GET through nginx over TLS; (status, headers, body), errors included."""
        context = ssl.create_default_context(cafile=str(self.ca))
        request = urllib.request.Request(self.base + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10, context=context) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def git(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        """git trusting the test certificate (``http.sslCAInfo``), the way a user would set it."""
        return subprocess.run(
            ["git", "-c", f"http.sslCAInfo={self.ca}", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def repo_url(self, key: Key, identifier: str) -> str:
        return f"{self.base}/{npub_encode(key.pubkey)}/{identifier}.git"

    def announce(self, key: Key, identifier: str):
        return key.announcement(
            identifier, clone=[self.repo_url(key, identifier)], relays=[f"wss://{self.domain}"]
        )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    """Relay (CLI, port 0) and nginx (the documented site file) started; both always stopped."""
    root = tmp_path_factory.mktemp("deploy")
    cert, key = tls_certificate(root / "tls")
    port, http_port = free_ports(2)
    relay = RelayProcess(root / "data", "--domain", f"127.0.0.1:{port}")
    with relay:
        site = render_site(
            DOC_CONF.read_text(),
            {
                "/etc/letsencrypt/live/relay.example.com/fullchain.pem": str(cert),
                "/etc/letsencrypt/live/relay.example.com/privkey.pem": str(key),
                "relay.example.com": "127.0.0.1",
                "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
                "listen 80;": f"listen 127.0.0.1:{http_port};",
                "server 127.0.0.1:7777;": f"server 127.0.0.1:{relay.port};",
            },
        )
        with NginxProcess(site, root / "nginx", ports=[port, http_port]) as nginx:
            yield Deployment(relay, nginx, cert, port, http_port)


def _big_commit(repo: RepoBuilder, size: int, parent: str, branch: str) -> str:
    """A commit carrying ``size`` bytes of incompressible data (the pack is about that big)."""
    blob_file = repo.path.parent / "big.bin"
    blob_file.write_bytes(os.urandom(size))
    blob = git("hash-object", "-w", blob_file, git_dir=repo.path).strip()
    tree = git("mktree", git_dir=repo.path, input=f"100644 blob {blob}\tbig.bin\n".encode()).strip()
    commit = git("commit-tree", tree, "-p", parent, "-m", "big", git_dir=repo.path).strip()
    repo.set_ref(f"refs/heads/{branch}", commit)
    return commit


def _push_and_see_released(
    deployment: Deployment, owner: Key, identifier: str, work: RepoBuilder, state
) -> None:
    """Hold ``state``, push its refs through nginx, receive the release on a live REQ."""
    client, watcher = deployment.client(), deployment.client()
    try:
        watcher.send("REQ", "live", {"kinds": [30618], "authors": [owner.pubkey]})
        assert watcher.recv() == ["EOSE", "live"]
        assert client.publish(state)[2:] == [True, HELD]
        pushed = deployment.git(
            "--git-dir", work.path, "push", deployment.repo_url(owner, identifier), "main:main"
        )
        assert pushed.returncode == 0, pushed.stderr + deployment.nginx.error_log
        frame = watcher.recv()  # S8: the push releases the held state to live subscribers
        assert frame[:2] == ["EVENT", "live"] and frame[2]["id"] == state.id, frame
    finally:
        client.close(), watcher.close()


def test_nip11_on_root_is_chosen_by_the_accept_header_through_nginx(deployment):
    """S10.2: nginx passes Accept through; without it "/" is the HTML page."""
    status, headers, body = deployment.get("/", Accept="application/nostr+json")
    assert status == 200 and headers["Content-Type"] == "application/nostr+json"
    info = json.loads(body)
    assert info["supported_nips"] == [1, 11, 34, 77] and "GRASP-01" in info["supported_grasps"]
    assert headers["Access-Control-Allow-Origin"] == "*"
    status, headers, body = deployment.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    # The Host header reaches the relay with its port (proxy_set_header Host $http_host).
    assert f"://{deployment.domain}/".encode() in body


def test_metrics_are_refused_through_nginx_and_served_on_the_relay_address(deployment):
    """deployment.rst: /metrics is private; every spelling of it is refused at the proxy."""
    for path in ("/metrics", "/metrics/", "/%6Detrics", "//metrics"):
        status, _, _ = deployment.get(path)
        assert status == 403, path
    with urllib.request.urlopen(deployment.relay.http_url + "/metrics", timeout=10) as direct:
        assert b"purgatory_sync_queue_size" in direct.read()


def test_status_pages_are_public_through_nginx(deployment):
    status, headers, _ = deployment.get("/status")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    status, _, body = deployment.get("/status.json")
    assert status == 200 and "sync" in json.loads(body)


def test_plain_http_redirects_to_https(deployment):
    connection = http.client.HTTPConnection("127.0.0.1", deployment.http_port, timeout=10)
    try:
        connection.request("GET", "/npub1x/repo.git/info/refs?service=git-upload-pack")
        response = connection.getresponse()
        assert response.status == 301
        assert response.getheader("Location").startswith("https://127.0.0.1")
    finally:
        connection.close()


def test_publish_push_clone_and_live_release_over_tls(deployment, tmp_path):
    """S10.4 announcement with https/wss URLs of the proxy, S10.6 push of the held state's refs,
    S8 release seen live on wss://, S10.5 clone back with the same refs."""
    owner, identifier = Key(), "deployed"
    with closing(deployment.client()) as client:
        assert client.publish(deployment.announce(owner, identifier))[2:] == [True, HELD]
    work = RepoBuilder.create(tmp_path / "work.git")
    main = work.chain(3, branch="main")[-1]
    state = owner.state(identifier, {"refs/heads/main": main})
    _push_and_see_released(deployment, owner, identifier, work, state)
    clone = tmp_path / "clone.git"
    cloned = deployment.git(
        "clone", "--bare", "--quiet", deployment.repo_url(owner, identifier), clone
    )
    assert cloned.returncode == 0, cloned.stderr
    assert for_each_ref(clone) == for_each_ref(work.path) == {"refs/heads/main": main}


def test_push_over_2_mib_passes_the_body_limit(deployment, tmp_path):
    """nginx's default client_max_body_size (1 MiB) would refuse this push with 413; the
    documented 1g lets the relay decide. The pack goes chunked (over git's 1 MiB postBuffer)."""
    owner, identifier = Key(), "big"
    with closing(deployment.client()) as client:
        assert client.publish(deployment.announce(owner, identifier))[2:] == [True, HELD]
    work = RepoBuilder.create(tmp_path / "work.git")
    big = _big_commit(work, 3 * 1024 * 1024, work.commit(), "main")
    state = owner.state(identifier, {"refs/heads/main": big})
    _push_and_see_released(deployment, owner, identifier, work, state)
    clone = tmp_path / "clone.git"
    cloned = deployment.git(
        "clone", "--bare", "--quiet", deployment.repo_url(owner, identifier), clone
    )
    assert cloned.returncode == 0, cloned.stderr
    assert for_each_ref(clone) == {"refs/heads/main": big}
    assert git("cat-file", "-s", f"{big}:big.bin", git_dir=clone).strip() == str(3 * 1024 * 1024)
    log = deployment.nginx.access_log.splitlines()
    pushes = [line for line in log if "git-receive-pack" in line]
    assert any('"POST ' in line and '" 200 ' in line for line in pushes), pushes


def test_refused_push_reason_reaches_git_through_nginx(deployment, tmp_path):
    """S10.6: a push matching no state is refused with a reason git prints, proxy or not."""
    owner, identifier = Key(), "refused"
    with closing(deployment.client()) as client:
        assert client.publish(deployment.announce(owner, identifier))[2:] == [True, HELD]
    work = RepoBuilder.create(tmp_path / "work.git")
    work.commit(branch="main")
    refused = deployment.git(
        "--git-dir", work.path, "push", deployment.repo_url(owner, identifier), "main:main"
    )
    assert refused.returncode != 0
    assert "remote: " in refused.stderr and "repository state" in refused.stderr, refused.stderr
    assert "[remote rejected] main -> main" in refused.stderr, refused.stderr
