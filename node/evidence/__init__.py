"""Evidence a third party can check offline: `lienthong evidence` makes a bundle (make.py),
`lienthong verify-evidence` checks it with only the CA's certificate (check.py). See docs/audit.md."""
