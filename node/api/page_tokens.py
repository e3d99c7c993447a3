"""Directory page tokens: opaque, and only this process's own are taken.

A token names the last code of the page before, bound to the listing it came from (parent,
recursive) by an HMAC under a key made when the process starts. A token the node did not issue
(made up, edited, from another listing, or from before a restart) is refused as INVALID_REQUEST
naming `page_token`, never read as "past the end", which would end a client's listing early
without a word."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from ..errors import Reason, Rejected

MAX_TOKEN = 128  # a code of at most 35 characters and a 16-byte tag, base64: far below this
_TAG = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageTokens:
    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _tag(self, listing: tuple[str, bool], code: str) -> bytes:
        what = f"{listing[0]}\x00{int(listing[1])}\x00{code}".encode()
        return hmac.new(self._key, what, hashlib.sha256).digest()[:_TAG]

    def issue(self, listing: tuple[str, bool], code: str) -> str:
        return f"{_b64(code.encode())}.{_b64(self._tag(listing, code))}"

    def read(self, listing: tuple[str, bool], token: str) -> str:
        """The code the page after this token starts after; "" for the first page."""
        if not token:
            return ""
        refused = Rejected(Reason.INVALID_REQUEST, "page_token is not one this node gave for this listing "
                           "(tokens last while the node runs): start again with an empty page_token",
                           field="page_token")
        if len(token) > MAX_TOKEN or token.count(".") != 1:
            raise refused
        code_part, tag_part = token.split(".")
        try:
            code, tag = _unb64(code_part).decode(), _unb64(tag_part)
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise refused from None
        if not code or not hmac.compare_digest(tag, self._tag(listing, code)):
            raise refused
        return code
