"""Who this node sends as: the edXML `From` of what it sends, and which `From` it may sign.

A document's `From` is what the recipient's software shows as the sender, so it is bound to
the key that signs the envelope: a node sends only documents and statuses whose `From`
organ id is one it may send for (`may_send_for`), whether they come from `Send`, `Change`
or an imported edXML packet; the refusal is FROM_NOT_ALLOWED and nothing is queued. Today
a node sends for its own code only; a node that sends for several agencies (a later
change) widens `may_send_for`, and nothing else has to change.

What the agency's software leaves empty on `Send` the node fills in (`complete`): the
`From` (code, name, and the address, email and phone of `node.address`, `node.email`,
`node.phone`) and a `DocumentId`, so that every document it sends can be exported as a
QCVN 102 packet by its recipients.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from ..errors import Reason, Rejected
from ..pb import envelope_pb2 as pb

_DATE = re.compile(r"\d{4}/\d{2}/\d{2}")
_VN_TIME = dt.timezone(dt.timedelta(hours=7))  # as lifecycle.VN_TIME: edXML dates are local (Indochina Time)


@dataclass(frozen=True)
class Origin:
    code: str
    name: str
    address: str = ""
    email: str = ""
    phone: str = ""

    def may_send_for(self, organ_id: str) -> bool:
        """May this node send a document or status whose `From` names `organ_id`?"""
        return organ_id == self.code

    def check(self, organ: pb.Organization, field: str) -> None:
        """FROM_NOT_ALLOWED unless this node may send for the organ id `organ` names."""
        if not self.may_send_for(organ.organ_id):
            claimed = repr(organ.organ_id) if organ.organ_id else "no agency (empty OrganId)"
            raise Rejected(Reason.FROM_NOT_ALLOWED,
                           f"From names {claimed}; this node ({self.code}) may send only for {self.code}",
                           field=field, metadata={"from_organ": organ.organ_id, "node_code": self.code})

    def organization(self) -> pb.Organization:
        return pb.Organization(organ_id=self.code, organ_name=self.name, organ_add=self.address, email=self.email,
                               telephone=self.phone)

    def complete(self, doc: pb.Document, now_ms: int) -> pb.Document:
        """Fill, in place, the `From` fields and the `DocumentId` the caller left empty; returns `doc`.

        Only empty fields are filled: a `From` naming another agency stays as it is (and
        `check` refuses it). Attachment metadata that only Fetch sets is dropped."""
        f = doc.from_organ
        f.SetInParent()
        if not f.organ_id:
            f.organ_id = self.code
        if f.organ_id == self.code:
            for attr, value in (("organ_name", self.name), ("organ_add", self.address), ("email", self.email),
                                ("telephone", self.phone)):
                if value and not getattr(f, attr):
                    setattr(f, attr, value)
        if not doc.document_id:
            doc.document_id = self.document_id(doc, now_ms)
        for a in doc.attachments:
            a.ClearField("unwrapped_from")
        return doc

    def document_id(self, doc: pb.Document, now_ms: int) -> str:
        """`OrganId,yyyy/MM/dd,Number/Notation` (QCVN 102): the promulgation date when the document
        has one (else today, Vietnam time), its code number and notation (else a random id)."""
        day = doc.promulgation_info.promulgation_date
        if not _DATE.fullmatch(day):
            day = dt.datetime.fromtimestamp(now_ms / 1000, _VN_TIME).strftime("%Y/%m/%d")
        number = "/".join(p for p in (doc.code.code_number, doc.code.code_notation) if p) or str(uuid.uuid4())
        return f"{self.code},{day},{number}"
