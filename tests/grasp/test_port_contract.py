"""The port's promises (ARCHITECTURE §4), one contract run against every implementation.

dulwich's ``ObjectStoreTests`` habit: :class:`PortContract` holds the behaviour tests and knows
nothing of an implementation; each subclass builds one "world" — an identifier whose held event
needs one object that a good URL serves and a bad URL cannot — in its own terms:
:class:`~actors.fakes.MockSyncContext` by its builder, ``RealSyncContext`` over a real event
store, purgatory, bare repositories and a real ``git http-backend`` on loopback.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from actors.context import FETCH_FAILURE_REASONS, FetchFailed, FetchResult, SyncContext
from actors.fakes import MockSyncContext
from tests.support.gitrepo import RepoBuilder
from tests.support.gitserver import GitServer
from tests.support.nip34 import Key

D = "contract"
DOMAIN = "relay.invalid"


@dataclass
class Port:
    ctx: SyncContext
    good_url: str
    bad_url: str
    oid: str
    lacking_url: str  # answers, but does not have ``oid``


class PortContract:
    """Behaviour every SyncContext must show; subclasses provide the ``port`` fixture."""

    def test_an_identifier_without_held_events_needs_nothing(self, port: Port):
        assert not port.ctx.has_pending_events("nothing-here")
        assert port.ctx.collect_needed_oids("nothing-here") == set()
        assert "nothing-here" not in port.ctx.pending_identifiers()

    def test_a_held_event_makes_its_identifier_pending_with_its_oids(self, port: Port):
        """S2.3."""
        assert port.ctx.has_pending_events(D)
        assert port.ctx.collect_needed_oids(D) == {port.oid}
        assert D in port.ctx.pending_identifiers()

    def test_repository_data_lists_the_clone_urls_in_a_stable_order(self, port: Port):
        """S3.1: deterministic order, every URL once."""
        first = port.ctx.fetch_repository_data(D)
        assert first.identifier == D
        assert first.clone_urls() == [port.good_url, port.bad_url]
        assert port.ctx.fetch_repository_data(D) == first

    def test_the_target_repository_is_a_path(self, port: Port):
        target = port.ctx.find_target_repo(port.ctx.fetch_repository_data(D))
        assert isinstance(target, Path)

    def test_our_domain_is_the_configured_one(self, port: Port):
        assert port.ctx.our_domain() == DOMAIN

    def test_a_fetch_returns_exactly_the_needed_oids_that_arrived(self, port: Port):
        """S7.1: the needed OIDs present afterwards and not before, in one typed result
        (S18.1): nothing missing, the bytes stored if known, no timing (the actors add it)."""
        target = port.ctx.find_target_repo(port.ctx.fetch_repository_data(D))
        assert target is not None
        result = port.ctx.fetch_oids(target, port.good_url, [port.oid])
        assert isinstance(result, FetchResult)
        assert result.oids == (port.oid,) and result.missing == 0
        assert result.pack_bytes is None or result.pack_bytes > 0
        assert result.started is None and result.seconds is None

    def test_s18_1_a_server_without_the_objects_answers_how_many_it_lacked(self, port: Port):
        """``missing_objects``: the server answered, without the needed commit; no failure."""
        target = port.ctx.find_target_repo(port.ctx.fetch_repository_data(D))
        assert target is not None
        result = port.ctx.fetch_oids(target, port.lacking_url, [port.oid])
        assert result.oids == () and result.missing == 1
        assert result.pack_bytes in (None, 0)
        assert port.ctx.has_pending_events(D)

    def test_a_failed_fetch_raises_fetch_failed_with_url_and_reason(self, port: Port):
        """The port's one failure type (S7.2 reasons)."""
        target = port.ctx.find_target_repo(port.ctx.fetch_repository_data(D))
        assert target is not None
        with pytest.raises(FetchFailed) as failure:
            port.ctx.fetch_oids(target, port.bad_url, [port.oid])
        assert failure.value.url == port.bad_url
        assert failure.value.reason in FETCH_FAILURE_REASONS
        assert failure.value.started is None and failure.value.seconds is None

    def test_s6_1_a_fetch_that_got_its_answer_reports_the_transfer_end_once(self, port: Port):
        """The port says when the remote's part is over, once and before returning, so the
        caller frees the domain's slot before the pack is indexed (issue 16, S6.1)."""
        target = port.ctx.find_target_repo(port.ctx.fetch_repository_data(D))
        assert target is not None
        for url in (port.lacking_url, port.good_url):
            ends: list[str] = []
            port.ctx.fetch_oids(target, url, [port.oid], on_transfer_end=_appender(ends, url))
            assert ends == [url]

    def test_a_failed_fetch_reports_the_transfer_end_at_most_once(self, port: Port):
        target = port.ctx.find_target_repo(port.ctx.fetch_repository_data(D))
        assert target is not None
        ends: list[str] = []
        with pytest.raises(FetchFailed):
            port.ctx.fetch_oids(
                target, port.bad_url, [port.oid], on_transfer_end=lambda: ends.append("x")
            )
        assert len(ends) <= 1

    def test_nothing_is_released_before_the_objects_are_present(self, port: Port):
        result = port.ctx.process_satisfiable_events(D)
        assert not result.released_any
        assert port.ctx.has_pending_events(D)

    def test_after_a_fetch_the_release_empties_the_identifier(self, port: Port):
        """S5.4, S8: released once the objects are present; nothing pending afterwards."""
        target = port.ctx.find_target_repo(port.ctx.fetch_repository_data(D))
        assert target is not None
        port.ctx.fetch_oids(target, port.good_url, [port.oid])
        result = port.ctx.process_satisfiable_events(D)
        assert result.released_any and result.states_released == 1
        assert not port.ctx.has_pending_events(D)
        assert D not in port.ctx.pending_identifiers()
        assert not port.ctx.process_satisfiable_events(D).released_any  # idempotent


def _appender(log: list[str], item: str):
    return lambda: log.append(item)


def _closed_port_url(host: str) -> str:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    return f"http://{host}:{port}/{D}.git"


class TestMockSyncContext(PortContract):
    @pytest.fixture
    def port(self, tmp_path) -> Port:
        good, bad, oid = "https://good.example/c.git", "https://bad.example/c.git", "a" * 40
        lacking = "https://lacking.example/c.git"
        ctx = (
            MockSyncContext()
            .with_urls([good, bad], identifier=D)
            .with_needed_oids([oid], identifier=D)
            .url_provides(good, [oid])
            .url_fails(bad)
            .with_our_domain(DOMAIN)
            .with_target_repo(tmp_path / "target.git")
        )
        return Port(ctx, good, bad, oid, lacking)


class TestRealSyncContext(PortContract):
    @pytest.fixture
    def port(self, world, tmp_path) -> Port:
        assert world.ctx.our_domain() == DOMAIN
        with GitServer(tmp_path / "remote", host="127.0.0.2") as server:
            tip = RepoBuilder.create(server.root / f"{D}.git").commit()
            RepoBuilder.create(server.root / "lacking.git").commit("another history")
            good, bad = server.url(f"{D}.git"), _closed_port_url("127.0.0.3")
            owner = Key()
            world.announce(owner, D, clone=[good, bad])
            world.hold_state(owner.state(D, {"refs/heads/main": tip}))
            yield Port(world.ctx, good, bad, tip, server.url("lacking.git"))
