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
