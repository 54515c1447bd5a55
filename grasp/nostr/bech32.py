"""Bech32 (BIP-173) encoding of NIP-19 entities: ``npub1...`` <-> 64-char hex, and the TLV
``naddr1...`` of an addressable event (a repository announcement's link for nostr git clients).

Only the plain bech32 checksum (constant 1) is implemented, because NIP-19 uses it;
``nsec``/``note`` work through the same two functions with another ``hrp``. Written out here
rather than pulled in as a dependency: it is forty lines and the repository paths
(``<data>/repos/<npub>/<d>.git``) depend on it being exactly right. TLV entities may be longer
than BIP-173's 90 characters (NIP-19 lifts the limit), so :func:`naddr_decode` allows more.
"""

from __future__ import annotations

import functools

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_INDEX = {c: i for i, c in enumerate(CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
MAX_LENGTH = 90  # BIP-173; NIP-19 TLV entities may be longer, bare keys never are
#: NIP-19 TLV entities (``naddr``): no BIP-173 limit, but a bound on what is decoded.
MAX_TLV_LENGTH = 5000
#: NIP-19 TLV types of ``naddr``.
TLV_SPECIAL, TLV_RELAY, TLV_AUTHOR, TLV_KIND = 0, 1, 2, 3


class Bech32Error(ValueError):
    """A string that is not valid bech32 or not the expected entity."""


def _polymod(values: list[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GENERATOR):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits or (acc << (to_bits - bits)) & maxv:
        raise Bech32Error("invalid padding in bech32 data")
    return out


def bech32_encode(hrp: str, payload: bytes) -> str:
    data = _convert_bits(payload, 8, 5, pad=True)
    checksum_input = _hrp_expand(hrp) + data + [0] * 6
    polymod = _polymod(checksum_input) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in data + checksum)


def bech32_decode(text: str, max_length: int = MAX_LENGTH) -> tuple[str, bytes]:
    """Decode ``text`` into (hrp, payload bytes); raises :class:`Bech32Error` on any defect."""
    if not isinstance(text, str) or len(text) > max_length:
        raise Bech32Error("bech32 string missing or too long")
    if text.lower() != text and text.upper() != text:
        raise Bech32Error("bech32 string mixes upper and lower case")
    text = text.lower()
    hrp, sep, rest = text.rpartition("1")
    if not sep or not hrp or len(rest) < 6:
        raise Bech32Error("bech32 string has no separator or a short checksum")
    if any(ord(c) < 33 or ord(c) > 126 for c in hrp):
        raise Bech32Error("bech32 prefix has invalid characters")
    try:
        data = [_CHARSET_INDEX[c] for c in rest]
    except KeyError as exc:
        raise Bech32Error(f"invalid bech32 character {exc.args[0]!r}") from None
    if _polymod(_hrp_expand(hrp) + data) != 1:
        raise Bech32Error("bech32 checksum mismatch")
    return hrp, bytes(_convert_bits(data[:-6], 5, 8, pad=False))


@functools.lru_cache(maxsize=4096)
def npub_encode(pubkey_hex: str) -> str:
    """NIP-19 ``npub`` of a 64-char lowercase hex public key.

    Cached: every repository path is built from one (``<data>/repos/<npub>/``), several times
    per held event, and the few keys that publish repeat (P7, issue 16)."""
    return bech32_encode("npub", _key_bytes(pubkey_hex))


def npub_decode(npub: str) -> str:
    """The 64-char lowercase hex public key inside an ``npub``; :class:`Bech32Error` otherwise."""
    hrp, payload = bech32_decode(npub)
    if hrp != "npub":
        raise Bech32Error(f"expected an npub, got prefix {hrp!r}")
    if len(payload) != 32:
        raise Bech32Error(f"npub carries {len(payload)} bytes, expected 32")
    return payload.hex()


def _key_bytes(pubkey_hex: str) -> bytes:
    if not isinstance(pubkey_hex, str) or len(pubkey_hex) != 64:
        raise Bech32Error("public key must be 64 hex characters")
    try:
        return bytes.fromhex(pubkey_hex)
    except ValueError:
        raise Bech32Error("public key must be 64 hex characters") from None


def naddr_encode(kind: int, pubkey_hex: str, identifier: str, relays: tuple[str, ...] = ()) -> str:
    """NIP-19 ``naddr`` of ``<kind>:<pubkey>:<identifier>`` with relay hints, in NIP-19's TLV
    order (identifier, relays, author, kind); :class:`Bech32Error` when a value exceeds the
    255 bytes one TLV entry can hold."""
    if not 0 <= kind < 1 << 32:
        raise Bech32Error(f"kind {kind} does not fit an naddr")
    entries = [(TLV_SPECIAL, identifier.encode("utf-8"))]
    entries += [(TLV_RELAY, relay.encode("utf-8")) for relay in relays]
    entries += [(TLV_AUTHOR, _key_bytes(pubkey_hex)), (TLV_KIND, kind.to_bytes(4, "big"))]
    payload = b""
    for tlv_type, value in entries:
        if len(value) > 255:
            raise Bech32Error(f"naddr entry of type {tlv_type} is {len(value)} bytes (max 255)")
        payload += bytes((tlv_type, len(value))) + value
    return bech32_encode("naddr", payload)


def naddr_decode(text: str) -> tuple[int, str, str, tuple[str, ...]]:
    """(kind, pubkey hex, identifier, relays) of an ``naddr``; :class:`Bech32Error` otherwise."""
    hrp, payload = bech32_decode(text, MAX_TLV_LENGTH)
    if hrp != "naddr":
        raise Bech32Error(f"expected an naddr, got prefix {hrp!r}")
    found: dict[int, list[bytes]] = {}
    offset = 0
    while offset + 2 <= len(payload):
        tlv_type, length = payload[offset], payload[offset + 1]
        value = payload[offset + 2 : offset + 2 + length]
        if len(value) != length:
            raise Bech32Error("naddr TLV entry is cut short")
        found.setdefault(tlv_type, []).append(value)
        offset += 2 + length
    try:
        [identifier], [author], [kind] = (found[t] for t in (TLV_SPECIAL, TLV_AUTHOR, TLV_KIND))
        relays = tuple(r.decode("utf-8") for r in found.get(TLV_RELAY, []))
        return int.from_bytes(kind, "big"), author.hex(), identifier.decode("utf-8"), relays
    except (KeyError, ValueError) as exc:
        raise Bech32Error(f"naddr lacks or repeats an entry, or is not UTF-8 ({exc})") from None
