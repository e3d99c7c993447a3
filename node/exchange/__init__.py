"""Node-to-node exchange: taking custody of envelopes, and handing ours on, hop by hop."""
