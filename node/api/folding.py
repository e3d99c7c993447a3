"""Text folded for a search a person types: case, Vietnamese diacritics and đ do not matter.

A clerk types `hoa thanh` for `Hòa Thành` and `dong` for `Đồng`; Unicode's decomposition takes
the tone and vowel marks off, but đ/Đ is a letter of its own (no decomposition), mapped by hand."""
from __future__ import annotations

import unicodedata

_D = str.maketrans({"đ": "d", "Đ": "D"})


def fold(text: str) -> str:
    """Lower case, without combining marks, đ as d: compare folded text with folded text."""
    decomposed = unicodedata.normalize("NFD", text.translate(_D))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
