"""TLS for the router: the server context (`server.tls`), certificate fingerprints, and the
self-signed certificate of `continuum serve --tls-self-signed`.

Serving TLS and fingerprints need only the standard library (`ssl`, `hashlib`). Making a
certificate needs the `cryptography` package (optional extra `continuum[tls]`), imported only
when one is made.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import ipaddress
import os
import socket
import ssl
from pathlib import Path

from continuum_cli.errors import ConfigError, ContinuumError

_VALID_DAYS = 825  # the longest validity Apple's TLS policy accepts for a leaf certificate
_RENEW_BEFORE = datetime.timedelta(days=30)


def server_context(cert: str, key: str) -> ssl.SSLContext:
    """An SSL context serving `cert` (PEM, leaf first, then any chain) with `key`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(os.path.expanduser(cert), os.path.expanduser(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"server.tls: cannot load certificate {cert} with key {key}: {exc}",
                          path="server.tls",
                          hint="give PEM files: the certificate (chain) and its private key")
    return context


def client_context(cert: str | None = None) -> ssl.SSLContext:
    """A client context trusting the system CAs plus `cert` (the router's own certificate:
    a self-signed one is its own anchor), for continuum's own calls to the router."""
    context = ssl.create_default_context()
    if cert:
        with contextlib.suppress(OSError, ssl.SSLError):
            context.load_verify_locations(os.path.expanduser(cert))
    return context


def leaf_der(cert_pem: str) -> bytes:
    """The DER bytes of the first certificate in a PEM file (the leaf the server presents)."""
    text = Path(cert_pem).expanduser().read_text(encoding="ascii", errors="replace")
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = text.find(begin)
    stop = text.find(end, start)
    if start < 0 or stop < 0:
        raise ConfigError(f"{cert_pem} holds no PEM certificate", path="server.tls.cert")
    return ssl.PEM_cert_to_DER_cert(text[start:stop + len(end)])


def fingerprint(cert_pem: str) -> str:
    """SHA-256 of the leaf certificate, lowercase hex without colons: the form Claude Code
    pins in `gatewayTrust` (`fingerprint256` with the colons removed, lowercased)."""
    return hashlib.sha256(leaf_der(cert_pem)).hexdigest()


def colon_fingerprint(hex_digest: str) -> str:
    """`ab12…` -> `AB:12:…`, the form browsers and `openssl x509 -fingerprint` show."""
    return ":".join(hex_digest[i:i + 2] for i in range(0, len(hex_digest), 2)).upper()


def default_names(bind_host: str) -> list[str]:
    """Names a self-signed certificate should carry: localhost, this machine's names, and the
    bound address. Claude Code requires the exact DNS name in a subjectAltName."""
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()]
    if bind_host not in ("", "0.0.0.0", "::"):
        names.append(bind_host)
    return list(dict.fromkeys(n for n in names if n))


def self_signed(folder: Path, names: list[str]) -> tuple[Path, Path, bool]:
    """(cert, key, created): the certificate kept in `folder`, made again when it is missing,
    does not cover `names`, or expires within 30 days."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    if cert.is_file() and key.is_file() and _still_good(cert, names):
        return cert, key, False
    _make(cert, key, names)
    return cert, key, True


def _crypto():  # type: ignore[no-untyped-def]
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ModuleNotFoundError:
        raise ContinuumError(
            "making a self-signed certificate needs the `cryptography` package",
            hint="pip install 'continuum[tls]', or give your own certificate in server.tls",
        ) from None
    return x509, hashes, serialization, ec, NameOID


def _still_good(cert: Path, names: list[str]) -> bool:
    x509 = _crypto()[0]
    try:
        parsed = x509.load_pem_x509_certificate(cert.read_bytes())
        sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    have = {str(v) for v in sans.get_values_for_type(x509.DNSName)}
    have |= {str(v) for v in sans.get_values_for_type(x509.IPAddress)}
    left = parsed.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return left > _RENEW_BEFORE and all(_canonical(n) in have for n in names)


def _canonical(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def _san(x509, name: str):  # type: ignore[no-untyped-def]
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _make(cert: Path, key: Path, names: list[str]) -> None:
    x509, hashes, serialization, ec, NameOID = _crypto()
    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "continuum")])
    now = datetime.datetime.now(datetime.UTC)
    built = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(private.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([_san(x509, n) for n in names]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(private, hashes.SHA256())
    )
    cert.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = private.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    _write_private(key, key_bytes)
    _write_private(cert, built.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)
