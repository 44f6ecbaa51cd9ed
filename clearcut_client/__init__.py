"""The Clearcut client: pull a licensed dataset, verify it, record its lineage, attest its use.

It talks to the API over HTTP only and imports nothing of the server (import-linter keeps it
so): a developer's machine needs the package installed and an API key, nothing else.
"""

__version__ = "0.1.0"
