"""The tamper-evident custody log: a hash chain over the audit rows, signed checkpoints anchored at
the parent, and the check that proves both (`lienthong audit verify`). See docs/audit.md."""
