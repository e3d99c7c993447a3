"""A document's life after delivery: statuses back to the sender, revoke / update / replace, tracking."""
