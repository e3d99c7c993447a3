"""The hostile catalogue: a malicious insider against real node processes (issue 9).

A package so that the world of node processes in conftest.py is package-scoped, and so that
`python -m tests.hostile.catalogue` prints the catalogue as a table."""
