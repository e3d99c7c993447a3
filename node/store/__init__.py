"""The node's SQLite mailbox: one database wrapper, one small module per concern."""
from .database import Database

__all__ = ["Database"]
