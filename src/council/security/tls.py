"""TLS material for the LAN listener: a per-stick certificate authority and its server certificate.

Phones reach council over the LAN by IP address or an mDNS `.local` name, which no public CA will
certify. So each stick creates its own CA once (`tls/ca.pem`, `tls/ca-key.pem`) and the user
installs that CA on each phone (`ios_profile` wraps it for iPhones). Every stick gets its own CA,
never one shared by all installations, so a key extracted from one stick only matters to the
phones paired with that stick.

A CA that a phone trusts is powerful, so this one is fenced in with a critical X.509 Name
Constraints extension (RFC 5280, 4.2.1.10). Its permitted subtrees are `localhost`, `local` and
the private, loopback, carrier-grade NAT and link-local address ranges (`LAN_NETWORKS`), and
nothing else. A verifier that honours the extension (browsers, iOS, Android, OpenSSL, the
`cryptography` verifier) rejects any certificate under this CA for `example.com` or `8.8.8.8`, so
even a stolen CA key cannot impersonate a public site. The DNS subtree is written `local` rather
than `.local`: by RFC 5280 a DNS constraint also permits every name formed by adding labels on
the left, so `local` covers `box.local` (and `local` itself, but not `evillocal`). A leading dot
is not part of the RFC's DNS syntax; `cryptography` reports such a constraint as malformed and
then rejects every certificate with a DNS name.

The CA is loaded, never rewritten: if its files are corrupt, mismatched or half missing, a
`ValueError` names the file instead of creating a new CA behind the user's back, because every
phone paired with the stick trusts exactly that certificate.

The server certificate (`tls/server.pem` holding leaf then CA, `tls/server-key.pem`) is cheap and
short-lived: it lasts 30 days at most, since browsers limit leaf lifetimes and a short life keeps a
leaked key's value low. `ensure_server_certificate` runs at every start and reissues it when it is
missing, unreadable, not from this CA, issued for other names or addresses (the laptop joined
another network), or within `renew_before` of expiry. Otherwise the files stay byte for byte as
they are.

Every file is written atomically (temp file in the same folder, fsync, `os.replace`) because a
stick can be pulled out at any moment, and key files are created with mode 0600.
"""

from __future__ import annotations

import ipaddress
import os
import plistlib
import re
import secrets
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import psutil
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from council.atomicfile import sync_directory, write_temp

IPAddress = IPv4Address | IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"

PERMITTED_DNS: tuple[str, ...] = ("localhost", "local")
"""DNS subtrees the CA may certify: `localhost`, `local` and any name ending in them."""

LAN_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(network)
    for network in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT, common on phone hotspots
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)
"""Address ranges the CA may certify; nothing routable on the public internet."""

CA_LIFETIME = timedelta(days=3650)
MAX_SERVER_DAYS = 30
CLOCK_SKEW = timedelta(minutes=5)

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PROFILE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "council.local")


@dataclass(frozen=True)
class CertificateAuthority:
    """The stick's own CA: a self-signed, name-constrained certificate and its private key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate's DER, as uppercase hex pairs joined by colons."""
        return self.certificate.fingerprint(hashes.SHA256()).hex(":").upper()


@dataclass(frozen=True)
class ServerCertificate:
    """Where the LAN listener finds its certificate chain and key, and what they cover."""

    cert_path: Path
    key_path: Path
    not_after: datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]


def load_or_create_ca(tls_dir: Path, *, name: str = "council") -> CertificateAuthority:
    """Load the CA from `tls_dir`, or create it there if neither of its files exists yet.

    Raises `ValueError`, naming the file, when the files are corrupt, do not belong together, or
    only one of them exists. An existing CA is never replaced: phones trust it.
    """
    cert_path = tls_dir / CA_CERT_FILE
    key_path = tls_dir / CA_KEY_FILE
    cert_exists, key_exists = cert_path.exists(), key_path.exists()
    if cert_exists and key_exists:
        return _load_ca(cert_path, key_path)
    if cert_exists or key_exists:
        present, missing = (cert_path, key_path) if cert_exists else (key_path, cert_path)
        raise ValueError(
            f"{missing} is missing but {present} exists, so the stick's certificate authority "
            f"cannot be used. Restore {missing.name} from a backup, or move both files away to "
            "create a new CA (every paired phone must then install the new one)."
        )
    ca = _new_ca(name)
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_pair(key_path, _private_pem(ca.key), cert_path, ca.pem)
    return ca


def ensure_server_certificate(
    tls_dir: Path,
    ca: CertificateAuthority,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    *,
    days: int = MAX_SERVER_DAYS,
    renew_before: timedelta = timedelta(days=7),
    now: datetime | None = None,
) -> tuple[ServerCertificate, bool]:
    """Return the server certificate for exactly these names, and whether it was (re)issued.

    The existing `server.pem` is kept, byte for byte, while it is signed by `ca`, covers the same
    DNS names and IP addresses (in any order) and expires later than `renew_before` from `now`.
    Raises `ValueError` for a name or address the CA's name constraints do not permit.
    """
    if isinstance(dns_names, str) or isinstance(ip_addresses, str):
        raise TypeError("dns_names and ip_addresses are sequences of strings, not one string")
    if not 1 <= days <= MAX_SERVER_DAYS:
        raise ValueError(f"server certificates last 1 to {MAX_SERVER_DAYS} days, not {days}")
    if not timedelta(0) <= renew_before < timedelta(days=days):
        raise ValueError(f"renew_before must be shorter than the {days}-day lifetime")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    dns = tuple(dict.fromkeys(_normalise_dns_name(name) for name in dns_names))
    ips = tuple(dict.fromkeys(_parse_ip(address) for address in ip_addresses))
    if not dns and not ips:
        raise ValueError("a server certificate needs at least one DNS name or IP address")
    _check_permitted(ca, dns, ips)

    cert_path = tls_dir / SERVER_CERT_FILE
    key_path = tls_dir / SERVER_KEY_FILE
    existing = _read_server_certificate(cert_path, key_path, ca)
    if existing is not None and _still_good(existing, dns, ips, now, renew_before):
        return _describe(cert_path, key_path, existing), False

    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _issue_leaf(ca, key, dns, ips, now=now, days=days)
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.pem
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_pair(key_path, _private_pem(key), cert_path, chain)
    return _describe(cert_path, key_path, leaf), True


def lan_addresses() -> list[str]:
    """This machine's addresses inside `LAN_NETWORKS`, without loopback and IPv6 link-local.

    IPv6 link-local addresses are left out because they need a zone index (`%wlan0`) that a
    phone's browser cannot use. Sorted numerically, IPv4 first, as strings.
    """
    found: set[IPAddress] = set()
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(address.address.split("%", 1)[0])
            except ValueError:
                continue
            if ip.is_loopback or (ip.version == 6 and ip.is_link_local):
                continue
            if _in_networks(ip, LAN_NETWORKS):
                found.add(ip)
    return [str(ip) for ip in sorted(found, key=lambda ip: (ip.version, int(ip)))]


def local_hostname() -> str:
    """This machine's mDNS name, `<first label of the hostname>.local`, as a valid DNS label."""
    label = socket.gethostname().split(".", 1)[0].lower()
    label = re.sub(r"[^a-z0-9]+", "-", label).strip("-")[:63].strip("-")
    return f"{label or 'council'}.local"


def ios_profile(ca: CertificateAuthority) -> bytes:
    """An Apple configuration profile (.mobileconfig, XML) that installs the CA as a root.

    The payload identifiers and UUIDs derive from the CA's fingerprint, so downloading the profile
    again replaces the installed one instead of adding a duplicate. iOS still asks the user to turn
    on full trust under Settings > General > About > Certificate Trust Settings.
    """
    digest = ca.fingerprint.replace(":", "")
    common_name = ca.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    described = str(common_name[0].value) if common_name else "council CA"
    description = (
        f"Lets this device open council over the local network. {described} may only certify "
        f"localhost, .local names and private addresses. SHA-256 fingerprint: {ca.fingerprint}"
    )
    root_payload = {
        "PayloadCertificateFileName": "council-ca.cer",
        "PayloadContent": ca.certificate.public_bytes(serialization.Encoding.DER),
        "PayloadDescription": "Adds the council certificate authority as a trusted root.",
        "PayloadDisplayName": "council CA",
        "PayloadIdentifier": f"local.council.ca.{digest[:16].lower()}.root",
        "PayloadType": "com.apple.security.root",
        "PayloadUUID": _profile_uuid(digest, "root"),
        "PayloadVersion": 1,
    }
    profile = {
        "PayloadContent": [root_payload],
        "PayloadDescription": description,
        "PayloadDisplayName": "council CA",
        "PayloadIdentifier": f"local.council.ca.{digest[:16].lower()}",
        "PayloadOrganization": "council",
        "PayloadRemovalDisallowed": False,
        "PayloadType": "Configuration",
        "PayloadUUID": _profile_uuid(digest, "profile"),
        "PayloadVersion": 1,
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True)


# --- the CA -----------------------------------------------------------------------------------


def _new_ca(name: str) -> CertificateAuthority:
    key = ec.generate_private_key(ec.SECP256R1())
    label = " ".join(name.split())[:48] or "council"
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "council"),
            # A random unit keeps two sticks with the same name apart on one phone.
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, secrets.token_hex(4).upper()),
            x509.NameAttribute(NameOID.COMMON_NAME, f"council CA ({label})"),
        ]
    )
    now = datetime.now(UTC)
    permitted: list[x509.GeneralName] = [x509.DNSName(name) for name in PERMITTED_DNS]
    permitted += [x509.IPAddress(network) for network in LAN_NETWORKS]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(certificate=certificate, key=key)


def _load_ca(cert_path: Path, key_path: Path) -> CertificateAuthority:
    keep = (
        "It is not replaced automatically because paired phones trust it: restore it from a "
        "backup, or move both CA files away to create a new CA and pair every phone again."
    )
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError as exc:
        raise ValueError(f"{cert_path} is not a readable PEM certificate ({exc}). {keep}") from exc
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(
            f"{key_path} is not a readable unencrypted PEM private key ({exc}). {keep}"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{key_path} is not an EC P-256 key. {keep}")
    if _public_der(key.public_key()) != _public_der(certificate.public_key()):
        raise ValueError(f"{key_path} is not the key of {cert_path}. {keep}")
    try:
        basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        constraints = certificate.extensions.get_extension_for_class(x509.NameConstraints)
    except x509.ExtensionNotFound as exc:
        raise ValueError(f"{cert_path} is not a name-constrained council CA. {keep}") from exc
    if not basic.value.ca or not constraints.critical:
        raise ValueError(f"{cert_path} is not a name-constrained council CA. {keep}")
    return CertificateAuthority(certificate=certificate, key=key)


# --- the server certificate -------------------------------------------------------------------


def _issue_leaf(
    ca: CertificateAuthority,
    key: ec.EllipticCurvePrivateKey,
    dns: tuple[str, ...],
    ips: tuple[IPAddress, ...],
    *,
    now: datetime,
    days: int,
) -> x509.Certificate:
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
    names += [x509.IPAddress(ip) for ip in ips]
    try:
        ca_key_id = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        authority = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id.value)
    except x509.ExtensionNotFound:
        authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
    # The common name has a space so that no verifier mistakes it for a host name to check
    # against the DNS constraints; the names that count are all in the SAN extension.
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "council"),
            x509.NameAttribute(NameOID.COMMON_NAME, "council server"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(authority, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )


def _read_server_certificate(
    cert_path: Path, key_path: Path, ca: CertificateAuthority
) -> x509.Certificate | None:
    """The leaf in `cert_path` if the files form a usable pair issued by `ca`, else None."""
    try:
        chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm):
        return None
    leaf = chain[0]
    if chain[1:] != [ca.certificate] or leaf.issuer != ca.certificate.subject:
        return None
    try:
        leaf.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return None
    if _public_der(key.public_key()) != _public_der(leaf.public_key()):
        return None
    return leaf


def _still_good(
    leaf: x509.Certificate,
    dns: tuple[str, ...],
    ips: tuple[IPAddress, ...],
    now: datetime,
    renew_before: timedelta,
) -> bool:
    have_dns, have_ips = _sans(leaf)
    return (
        set(have_dns) == set(dns)
        and set(have_ips) == set(ips)
        and leaf.not_valid_before_utc <= now
        and leaf.not_valid_after_utc - now > renew_before
    )


def _describe(cert_path: Path, key_path: Path, leaf: x509.Certificate) -> ServerCertificate:
    dns, ips = _sans(leaf)
    return ServerCertificate(
        cert_path=cert_path,
        key_path=key_path,
        not_after=leaf.not_valid_after_utc,
        dns_names=dns,
        ip_addresses=tuple(str(ip) for ip in ips),
    )


def _sans(leaf: x509.Certificate) -> tuple[tuple[str, ...], tuple[IPAddress, ...]]:
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    dns = tuple(name.lower() for name in names.get_values_for_type(x509.DNSName))
    ips = names.get_values_for_type(x509.IPAddress)
    return dns, tuple(ip for ip in ips if isinstance(ip, IPv4Address | IPv6Address))


# --- name constraints -------------------------------------------------------------------------


def _check_permitted(
    ca: CertificateAuthority, dns: Iterable[str], ips: Iterable[IPAddress]
) -> None:
    """Refuse names the CA's own Name Constraints extension does not permit (RFC 5280 rules)."""
    try:
        constraints = ca.certificate.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound as exc:
        raise ValueError("the CA has no name constraints; council will not issue from it") from exc
    permitted = list(constraints.permitted_subtrees or [])
    excluded = list(constraints.excluded_subtrees or [])
    allowed_dns = [tree.value for tree in permitted if isinstance(tree, x509.DNSName)]
    denied_dns = [tree.value for tree in excluded if isinstance(tree, x509.DNSName)]
    allowed_ips = [tree.value for tree in permitted if isinstance(tree, x509.IPAddress)]
    denied_ips = [tree.value for tree in excluded if isinstance(tree, x509.IPAddress)]
    for name in dns:
        if any(_dns_within(name, tree) for tree in denied_dns) or (
            allowed_dns and not any(_dns_within(name, tree) for tree in allowed_dns)
        ):
            raise ValueError(
                f"{name!r} is outside the CA's name constraints: only localhost and .local names"
            )
    for ip in ips:
        if _in_networks(ip, denied_ips) or (allowed_ips and not _in_networks(ip, allowed_ips)):
            raise ValueError(
                f"{ip} is outside the CA's name constraints: only private and loopback addresses"
            )


def _dns_within(name: str, constraint: str) -> bool:
    """RFC 5280: a DNS constraint matches itself and any name with labels added on the left."""
    constraint = constraint.lower().rstrip(".")
    if not constraint:
        return True
    if constraint.startswith("."):  # the OpenSSL reading: subdomains only
        return name.endswith(constraint)
    return name == constraint or name.endswith("." + constraint)


def _in_networks(ip: IPAddress, networks: Iterable[object]) -> bool:
    return any(
        isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network)
        and network.version == ip.version
        and ip in network
        for network in networks
    )


def _normalise_dns_name(name: str) -> str:
    normal = name.strip().rstrip(".").lower()
    if len(normal) > 253 or not _DNS_NAME.fullmatch(normal):
        raise ValueError(f"{name!r} is not a valid DNS host name")
    return normal


def _parse_ip(address: str) -> IPAddress:
    ip = ipaddress.ip_address(address.strip())
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        raise ValueError(f"{address!r} carries a zone index, which a certificate cannot hold")
    return ip


# --- small helpers ----------------------------------------------------------------------------


def _key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _public_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _profile_uuid(digest: str, role: str) -> str:
    return str(uuid.uuid5(_PROFILE_NAMESPACE, f"{digest}/{role}")).upper()


def _write_pair(key_path: Path, key_pem: bytes, cert_path: Path, cert_pem: bytes) -> None:
    """Write a key (mode 0600) and its certificate, each atomically, the key first.

    Both temp files are complete and synced before either is renamed into place, so a pulled
    stick leaves at worst a new key beside the old certificate, which the next load reports
    (for the CA) or reissues (for the server certificate).
    """
    key_temp = write_temp(key_path, key_pem, 0o600)
    try:
        cert_temp = write_temp(cert_path, cert_pem, 0o644)
    except BaseException:
        key_temp.unlink(missing_ok=True)
        raise
    try:
        os.replace(key_temp, key_path)
        os.replace(cert_temp, cert_path)
    except BaseException:
        key_temp.unlink(missing_ok=True)
        cert_temp.unlink(missing_ok=True)
        raise
    sync_directory(key_path.parent)
