"""Check base64 text without decoding it: alphabet, padding, and the size it decodes to."""

import string

ALPHABET = (string.ascii_letters + string.digits + "+/").encode()


def decoded_size(text: str) -> int | None:
    """Bytes the text decodes to, or None if it is not strict, padded base64."""
    if not text.isascii():
        return None
    raw = text.encode("ascii")
    if not raw or len(raw) % 4:
        return None
    body = raw.rstrip(b"=")
    padding = len(raw) - len(body)
    if padding > 2 or body.translate(None, ALPHABET):  # leftovers are foreign characters
        return None
    return len(raw) // 4 * 3 - padding
