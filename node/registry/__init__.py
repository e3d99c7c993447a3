"""The tiered registry: children register with their parent; lookups walk up, then down the tree."""
