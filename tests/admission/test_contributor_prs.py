"""GRASP-06 event rules (S16.1), one pure function at a time: which ``clone`` URLs name this
relay's ``/prs/``, and when they contradict the event."""

from urllib.parse import quote

from grasp.admission.contributor_prs import check_submission, is_submission, prs_urls
from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import sign_event
from grasp.nostr.nip34 import PullRequest
from tests.support.nip34 import Key

DOMAIN = "relay.example:7777"


def _pr(signer, clone, d="émoji-🚀", owner=None):
    owner = owner or Key()
    tags = [["a", f"30617:{owner.pubkey}:{d}"], ["c", "a" * 40], ["clone", *clone]]
    return PullRequest.from_event(sign_event(signer.secret, 1618, tags, "pr"))


def test_prs_urls_are_ours_by_authority_and_percent_decoded():
    key = Key()
    npub = npub_encode(key.pubkey)
    ours = f"https://RELAY.example:7777/prs/{npub}/{quote('émoji-🚀')}.git"
    pr = _pr(
        key,
        [ours, f"https://relay.example/prs/{npub}/x.git", f"ftp://{DOMAIN}/prs/{npub}/x.git"],
    )
    [found] = prs_urls(pr, DOMAIN)
    assert (found.url, found.owner, found.identifier) == (ours, key.pubkey, "émoji-🚀")
    assert is_submission(pr, DOMAIN) and check_submission(pr, DOMAIN) is None


def test_a_prs_url_of_another_key_or_identifier_is_refused_naming_the_mismatch():
    alice, bob = Key(), Key()
    alices = f"http://{DOMAIN}/prs/{npub_encode(alice.pubkey)}/émoji-🚀.git"
    forged = check_submission(_pr(bob, [alices]), DOMAIN)
    assert (
        forged.message.startswith("invalid: GRASP-06: ")
        and "signed by another key" in forged.message
    )
    other = f"http://{DOMAIN}/prs/{npub_encode(alice.pubkey)}/other.git"
    mismatch = check_submission(_pr(alice, [other]), DOMAIN)
    assert "names identifier 'other'" in mismatch.message and "'émoji-🚀'" in mismatch.message
    garbage = f"http://{DOMAIN}/prs/npub1nope/émoji-🚀.git"
    assert "signed by another key" in check_submission(_pr(alice, [garbage]), DOMAIN).message


def test_prs_urls_of_other_relays_are_ordinary_clone_urls():
    key = Key()
    pr = _pr(key, [f"https://elsewhere.example/prs/{npub_encode(key.pubkey)}/émoji-🚀.git"])
    assert prs_urls(pr, DOMAIN) == [] and not is_submission(pr, DOMAIN)
    assert check_submission(pr, DOMAIN) is None
