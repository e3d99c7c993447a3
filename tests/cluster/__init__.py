"""A package only so that the shared cluster in conftest.py can be package-scoped: it stops after
the last test of this directory instead of idling through the rest of the suite."""
