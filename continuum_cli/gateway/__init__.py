"""The Claude Code gateway protocol: sign-in (RFC 8628 device flow), bearer tokens, managed
settings, model discovery, usage and telemetry, served under the router's `/anthropic` URL.

Pure cores: `codes` (code and token generation, hashing), `checksum` (managed-settings
checksum and ETag), `device` (the device grant's state transitions), `page` (the verification
page's HTML), `csrf`. I/O shells: `store` (records in the state store), `oauth`, `endpoints`
and `verify` (the HTTP handlers).
"""
