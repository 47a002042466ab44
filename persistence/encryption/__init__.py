"""Encryption at rest: envelope encryption of document content (see ``store.py``)."""
