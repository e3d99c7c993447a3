"""edXML (QCVN 102:2016) packets ⇄ the node's protobuf `Document` / `Status`.

Agencies' document-management software speaks edXML; the node carries protobuf.
This package is the only place that touches edXML, so its parsing hazards (DTDs,
stray bytes, vendor quirks) stay here. See docs/edxml.md for the field mapping.
"""
from .common import EdxmlError
from .export import export_edxml
from .parse import import_edxml

__all__ = ["EdxmlError", "export_edxml", "import_edxml"]
