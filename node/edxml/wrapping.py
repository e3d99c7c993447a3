"""Attachments the national EdXML102 library zipped, and file types from names.

The national library zips every attachment it writes (`application/zip`, one entry named
`<uuid>.<ext>`) and unzips when it reads; the axis carries such packets as they are, and a
packet may say `application/zip`, or the inner file's type, for the same wrapping. The
node keeps the zip exactly as it travelled (a re-export is byte-identical to what arrived)
and hands the agency's software the inner file: its bytes, under the Attachment's name,
with the type the packet gives for it (or one guessed from the name).

Recognised as a wrapper, and nothing else: a valid zip holding exactly one file, named
`<uuid>.<ext>`, stored or deflated, not encrypted, whose declared size fits the budget the
caller gives (a reply must stay within the API's message limit; zipfile never inflates
beyond the declared size, and checks the CRC). A zip that a person made (another entry
name, several entries) is an ordinary attachment and is handed over as it is.
"""
from __future__ import annotations

import hashlib
import io
import mimetypes
import re
import zipfile
from dataclasses import dataclass

from node.pb import envelope_pb2 as pb

ZIP_TYPES = {"application/zip", "application/x-zip-compressed", "application/x-zip"}
_ENTRY = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\.([^./\\]{1,16})")
# Office and common types first: the standard library's table lacks some (and is the same on every machine,
# since MimeTypes() is built from Python's defaults only, never from /etc/mime.types).
_TYPES = {
    "doc": "application/msword", "dot": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text", "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "pdf": "application/pdf", "txt": "text/plain", "rtf": "application/rtf", "xml": "application/xml",
    "edxml": "application/xml", "zip": "application/zip", "rar": "application/vnd.rar",
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "tif": "image/tiff", "tiff": "image/tiff",
}
_DEFAULTS = mimetypes.MimeTypes()


def type_of_name(name: str, fallback: str = "application/octet-stream") -> str:
    """A MIME type for a file name, from its extension; `fallback` when unknown."""
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext in _TYPES:
        return _TYPES[ext]
    guessed = _DEFAULTS.guess_type("f." + ext)[0] if ext else None
    return guessed or fallback


def type_of_label(label: str, name: str) -> str:
    """A MIME type for a gateway's `AttachmentType` ("TXT", "PDF" or a MIME type already)."""
    label = label.strip()
    if "/" in label:
        return label
    if label.lower() in _TYPES or (label and _DEFAULTS.guess_type("f." + label.lower())[0]):
        return type_of_name("f." + label)
    return type_of_name(name)


@dataclass(frozen=True)
class Inner:
    name: str
    content_type: str
    data: bytes
    entry_name: str


def _entry(data: bytes, name: str, max_size: int) -> tuple[zipfile.ZipFile, zipfile.ZipInfo] | None:
    if not data.startswith(b"PK\x03\x04"):
        return None
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except Exception:  # noqa: BLE001 - whatever a sender's bytes make zipfile raise, it is not the wrapping
        return None
    if len(infos) != 1:
        return None
    info = infos[0]
    m = _ENTRY.fullmatch(info.filename)
    if m is None or info.is_dir() or info.flag_bits & 0x1 or info.file_size > max_size \
            or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return None
    if name.lower().endswith(".zip") and m.group(1).lower() != "zip":
        return None  # a .zip the agency made, holding one file: not the library's wrapping
    return zf, info


def is_wrapped(att: pb.Attachment, max_size: int = 1 << 62) -> bool:
    """Whether `att` looks like the national library's zip wrapping (without inflating it)."""
    return _entry(att.data, att.name, max_size) is not None


def inner_file(att: pb.Attachment, max_size: int) -> Inner | None:
    """The file inside a national-library zip wrapper, or None when `att` is not one (or the
    inner file is larger than `max_size`, or the zip is damaged)."""
    found = _entry(att.data, att.name, max_size)
    if found is None:
        return None
    zf, info = found
    try:
        with zf.open(info) as f:
            data = f.read(max_size + 1)
    except Exception:  # noqa: BLE001 - a CRC error, a truncated or corrupt stream: handed over as it travelled
        return None
    if len(data) != info.file_size:
        return None
    name = att.name or info.filename
    content_type = next((t for t in (att.content_type, att.manifest.content_type if att.HasField("manifest")
                                     and att.manifest.HasField("content_type") else "")
                         if t and t.lower() not in ZIP_TYPES), "") or type_of_name(name)
    return Inner(name, content_type, data, info.filename)


def unwrapped(doc: pb.Document, budget: int) -> pb.Document:
    """A copy of `doc` whose wrapped attachments are their inner files, each marked with
    `unwrapped_from`; the bytes added in all stay within `budget` (the rest stay wrapped)."""
    out = pb.Document()
    out.CopyFrom(doc)
    for a in out.attachments:
        if budget <= 0:
            break
        inner = inner_file(a, max_size=len(a.data) + budget)
        if inner is None:
            continue
        budget -= max(len(inner.data) - len(a.data), 0)
        wrapper = pb.ZipWrapper(content_type=a.content_type, entry_name=inner.entry_name, size=len(a.data),
                                sha256=hashlib.sha256(a.data).digest())
        a.name, a.content_type, a.data = inner.name, inner.content_type, inner.data
        a.ClearField("manifest")  # it described the file and its wrapping as they travelled
        a.unwrapped_from.CopyFrom(wrapper)
    return out
