"""The local API that agencies' document-management software calls."""
