"""A hand-over's request is encoded by hand (node.transport.interface.EncodedBatch): the bytes must be exactly
what the DeliverBatchRequest message encodes, at every length a varint changes size, so any peer parses
the same envelopes."""
from __future__ import annotations

import os

import pytest

from node.pb import exchange_pb2 as xpb
from node.transport.interface import EncodedBatch

SIZES = [0, 1, 127, 128, 129, 16_383, 16_384, 10_300, 2_097_151, 2_097_152]


@pytest.mark.parametrize("sizes", [[], [0], SIZES, [10_300] * 256])
def test_the_batch_encodes_as_the_message_does_and_parses_back_to_its_envelopes(sizes):
    envelopes = [os.urandom(n) for n in sizes]
    data = EncodedBatch(envelopes).SerializeToString()
    assert data == xpb.DeliverBatchRequest(envelopes=envelopes).SerializeToString()
    assert list(xpb.DeliverBatchRequest.FromString(data).envelopes) == envelopes
