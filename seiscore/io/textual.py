"""Textual (EBCDIC or ASCII) file headers: decode for display, add a processing line on export."""

from __future__ import annotations

LINE = 80
LINES = 40


def encoding_of(raw: bytes) -> str:
    """'cp037' (EBCDIC) or 'latin-1': EBCDIC 'C' is 0xC3, EBCDIC text is mostly >= 0x80, and its blank is
    0x40 where ASCII's is 0x20 (extended textual records start with '((' and are mostly blank)."""
    if not raw:
        return "latin-1"
    if raw[0] in (0xC3, 0x43):  # a card 'C' in EBCDIC / ASCII
        return "cp037" if raw[0] == 0xC3 else "latin-1"
    high = sum(b >= 0x80 for b in raw)
    return "cp037" if high > len(raw) // 3 or raw.count(0x40) > raw.count(0x20) else "latin-1"


def decode(raw: bytes) -> str:
    """The 3200-byte card image as 40 lines of text joined by newlines."""
    text = raw.decode(encoding_of(raw), errors="replace")
    return "\n".join(text[i : i + LINE].rstrip() for i in range(0, len(text), LINE))


def add_processing_line(raw: bytes, note: str) -> bytes:
    """Write ``note`` into the last blank card (after its 'Cnn ' prefix); unchanged if none is blank.

    The result keeps the original encoding and length (3200 bytes).
    """
    enc = encoding_of(raw)
    text = raw.decode(enc, errors="replace")
    cards = [text[i : i + LINE] for i in range(0, len(text), LINE)]
    for k in range(len(cards) - 1, -1, -1):
        card = cards[k]
        if card[4:].strip() == "" and k < LINES - 1:  # keep C40 ('END TEXTUAL HEADER' in rev 1)
            prefix = card[:4] if card[:1] == "C" else f"C{k + 1:2d} "
            cards[k] = (prefix + note)[:LINE].ljust(LINE)
            new = "".join(cards).encode(enc, errors="replace")
            return new if len(new) == len(raw) else raw
    return raw
