"""NIP-19 npub encoding (repository paths are ``<npub>/<identifier>.git``, S10.4)."""

import pytest

from grasp.nostr.bech32 import Bech32Error, bech32_decode, bech32_encode, npub_decode, npub_encode

# The example of NIP-19.
HEX = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e"
NPUB = "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg"


def test_nip19_example_both_ways():
    assert npub_encode(HEX) == NPUB
    assert npub_decode(NPUB) == HEX
    assert npub_decode(NPUB.upper()) == HEX


@pytest.mark.parametrize(
    "text, reason",
    [
        (NPUB[:-1] + ("q" if NPUB[-1] != "q" else "p"), "checksum"),
        (NPUB[:10] + NPUB[10:].upper(), "mixes upper and lower case"),
        ("npub1" + "b" * 58, "invalid bech32 character"),
        (bech32_encode("nsec", bytes(32)), "expected an npub"),
        (bech32_encode("npub", bytes(31)), "31 bytes"),
        ("nosepar", "separator"),
        ("npub1" + "q" * 100, "too long"),
    ],
)
def test_bad_npubs_say_why(text, reason):
    with pytest.raises(Bech32Error, match=reason):
        npub_decode(text)


@pytest.mark.parametrize("bad", ["ab", "zz" * 32, 5])
def test_npub_encode_refuses_non_keys(bad):
    with pytest.raises(Bech32Error):
        npub_encode(bad)


def test_round_trip_arbitrary_payloads():
    for size in (0, 1, 20, 32, 40):
        payload = bytes(range(size))
        assert bech32_decode(bech32_encode("note", payload)) == ("note", payload)


def test_naddr_round_trips_and_matches_an_independent_decoder():
    """NIP-19 TLV (the landing page's gitworkshop.dev link, GRASP-01 L58): nostr-sdk reads ours."""
    import nostr_sdk

    from grasp.nostr.bech32 import naddr_decode, naddr_encode

    pubkey = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e"
    naddr = naddr_encode(30617, pubkey, "my repo 🚀", ("wss://relay.example", "wss://b.example"))
    assert len(naddr) > 90  # TLV entities are longer than BIP-173's limit
    assert naddr_decode(naddr) == (
        30617,
        pubkey,
        "my repo 🚀",
        ("wss://relay.example", "wss://b.example"),
    )
    sdk = nostr_sdk.Nip19Coordinate.from_bech32(naddr)
    assert sdk.coordinate().identifier() == "my repo 🚀"
    assert sdk.coordinate().kind().as_u16() == 30617
    assert [str(r) for r in sdk.relays()] == ["wss://relay.example", "wss://b.example"]
    back = nostr_sdk.Nip19Coordinate(sdk.coordinate(), sdk.relays()).to_bech32()
    assert naddr_decode(back)[:3] == (30617, pubkey, "my repo 🚀")


def test_naddr_refuses_what_one_tlv_entry_cannot_hold():
    from grasp.nostr.bech32 import naddr_decode, naddr_encode

    with pytest.raises(Bech32Error, match="max 255"):
        naddr_encode(30617, "ab" * 32, "x" * 256)
    with pytest.raises(Bech32Error, match="expected an naddr"):
        naddr_decode(bech32_encode("nevent", b"\x00\x01x"))
    with pytest.raises(Bech32Error, match="lacks or repeats"):
        naddr_decode(bech32_encode("naddr", b"\x00\x01x"))
