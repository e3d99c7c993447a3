"""docs/openapi.json is what the proto descriptors generate today (scripts/gen-openapi), every RPC of
Mailbox and Stats has its route and operation, and every reference in it resolves."""
from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from node.api import openapi
from node.api.http_routes import SERVICES, path_for, routes

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "openapi.json"
HINT = "docs/openapi.json is stale: run scripts/gen-openapi (scripts/gen-proto runs it too) and commit the result"


def test_the_checked_in_document_is_what_the_descriptors_generate():
    new, old = openapi.render(), DOC.read_text(encoding="utf-8")
    if new != old:
        diff = "".join(list(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                                 "docs/openapi.json (committed)", "generated"))[:40])
        pytest.fail(f"{HINT}\n{diff}")


def test_the_scripts_generate_it():
    assert "-m node.api.openapi docs/openapi.json" in (ROOT / "scripts" / "gen-openapi").read_text()
    assert "scripts/gen-openapi" in (ROOT / "scripts" / "gen-proto").read_text()


def test_every_rpc_has_a_route_and_an_operation():
    doc = json.loads(DOC.read_text())
    for service in SERVICES:
        for method in service.methods:
            op = doc["paths"][path_for(service, method)]["post"]
            assert op["operationId"] == f"{service.name}_{method.name}"
            assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(method.input_type.full_name)
            content = op["responses"]["200"]["content"]
            assert list(content) == (["text/event-stream"] if method.server_streaming else ["application/json"])
    assert {r.path for r in routes()} <= set(doc["paths"])


def test_every_reference_resolves_and_messages_refuse_unknown_properties():
    doc = json.loads(DOC.read_text())
    schemas = doc["components"]["schemas"]

    def refs(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    for ref in refs(doc):
        kind, _, name = ref.removeprefix("#/components/").partition("/")
        assert name in doc["components"][kind], ref
    for route in routes():
        schema = schemas[route.method.input_type.full_name]
        assert schema["additionalProperties"] is False
        assert set(schema["properties"]) == {f.json_name for f in route.method.input_type.fields}


def test_the_status_table_in_api_md_is_the_one_the_face_uses():
    from node.api.http_json import HTTP_STATUS, http_status
    from node.errors import Reason
    text = (ROOT / "docs" / "api.md").read_text()
    section = text[text.index("### Errors"):text.index("### Watch as server-sent events")]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            names, status = line.strip("|").split("|")[:2]
            for name in names.replace("`", "").split(","):
                rows[name.strip()] = status.strip()
    for code, status in HTTP_STATUS.items():
        if code.name in rows:  # CANCELLED, UNIMPLEMENTED, DEADLINE_EXCEEDED: never a servicer's reason
            assert rows[code.name].startswith(str(status)), code.name
    for reason in Reason:
        assert reason.grpc_code.name in rows or http_status(reason) == 500, reason
    assert http_status(Reason.TOO_LARGE) == 413 and "413 for `TOO_LARGE`" in rows["RESOURCE_EXHAUSTED"]
    assert http_status(Reason.METHOD_NOT_ALLOWED) == 405 and "405 for `METHOD_NOT_ALLOWED`" in rows["UNIMPLEMENTED"]


def test_the_proto_comments_module_is_what_proto_generates(tmp_path):
    """The OpenAPI descriptions come from proto/'s comments through node/api/proto_comments.py, which
    scripts/gen-proto writes: a comment changed in proto/ without regenerating fails here."""
    import subprocess
    import sys

    from google.protobuf import descriptor_pb2

    from node.api import proto_comments_gen
    protos = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "proto" / "node" / "pb").glob("*.proto"))
    out = tmp_path / "set.binpb"
    proc = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-Iproto", "--include_source_info",
                           f"--descriptor_set_out={out}", *protos], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    new = proto_comments_gen.render(descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()))
    assert new == (ROOT / "node" / "api" / "proto_comments.py").read_text(encoding="utf-8"), \
        "node/api/proto_comments.py is stale: run scripts/gen-proto and commit the result"
    assert "--include_source_info" in (ROOT / "scripts" / "gen-proto").read_text()


def test_fields_and_enums_carry_the_protos_comments():
    doc = json.loads(DOC.read_text())
    send = doc["components"]["schemas"]["lienthong.v1.SendRequest"]["properties"]
    assert "one envelope each" in send["recipients"]["description"]
    assert send["recipients"]["nullable"] is True  # null reads as the default (schemathesis sent it)
    assert "idempotency key" in send["clientKey"]["description"]
    assert "non-delivery notice" in doc["components"]["schemas"]["lienthong.v1.Kind"]["description"]
