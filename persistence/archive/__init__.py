"""Archives: documents copied as immutable objects to an object store (see ``archiver.py``)."""
