"""Who a node is: its signing key, its X.509 certificate binding an agency code, and whom it trusts."""
