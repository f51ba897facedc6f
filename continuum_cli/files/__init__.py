"""The Files API store: uploaded files as blobs on disk, their metadata in the state store.

`multipart` parses upload bodies as they arrive (sans-I/O), `blob` writes and reads the bytes
in `files.dir` (atomic, under names the router makes), `store` keeps the metadata, ownership
and listing order, and `ids` makes file ids that sort by creation time.
"""
