"""The stick's certificate authority and server certificate, with real keys and real handshakes."""

from __future__ import annotations

import ipaddress
import plistlib
import re
import socket
import ssl
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from council.security.tls import (
    CertificateAuthority,
    ServerCertificate,
    ensure_server_certificate,
    ios_profile,
    lan_addresses,
    load_or_create_ca,
    local_hostname,
)

CGNAT = ipaddress.ip_network("100.64.0.0/10")


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    return tmp_path / "tls"


@pytest.fixture
def ca(tls_dir: Path) -> CertificateAuthority:
    return load_or_create_ca(tls_dir, name="test stick")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leaf(server: ServerCertificate) -> x509.Certificate:
    return x509.load_pem_x509_certificates(server.cert_path.read_bytes())[0]


def _verify(ca: CertificateAuthority, leaf: x509.Certificate, subject: x509.GeneralName) -> None:
    assert isinstance(subject, x509.DNSName | x509.IPAddress)
    verifier = PolicyBuilder().store(Store([ca.certificate])).build_server_verifier(subject)
    verifier.verify(leaf, [])


def _forge_leaf(ca: CertificateAuthority, name: x509.GeneralName) -> x509.Certificate:
    """What a thief holding the CA key would sign: a well-formed leaf for any name."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    ca_key_id = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forged")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=10))
        .add_extension(x509.SubjectAlternativeName([name]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id.value),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )


# --- the certificate authority ----------------------------------------------------------------


def test_ca_is_created_once_and_loaded_unchanged_afterwards(tls_dir: Path) -> None:
    first = load_or_create_ca(tls_dir)
    files = [tls_dir / "ca.pem", tls_dir / "ca-key.pem"]
    before = [(path.read_bytes(), path.stat().st_mtime_ns) for path in files]

    second = load_or_create_ca(tls_dir)

    assert second.fingerprint == first.fingerprint
    assert second.certificate == first.certificate
    assert [(path.read_bytes(), path.stat().st_mtime_ns) for path in files] == before
    assert (tls_dir / "ca.pem").read_bytes() == first.pem


def test_ca_key_file_is_readable_by_its_owner_only(ca: CertificateAuthority, tls_dir: Path) -> None:
    assert _mode(tls_dir / "ca-key.pem") == 0o600


def test_ca_fingerprint_is_the_sha256_of_the_der_in_colon_separated_hex(
    ca: CertificateAuthority,
) -> None:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(ca.certificate.public_bytes(serialization.Encoding.DER))
    expected = ":".join(f"{byte:02X}" for byte in digest.finalize())
    assert ca.fingerprint == expected


def test_ca_subject_names_the_stick_and_is_valid_for_about_ten_years(
    ca: CertificateAuthority,
) -> None:
    common_name = ca.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == "council CA (test stick)"
    lifetime = ca.certificate.not_valid_after_utc - ca.certificate.not_valid_before_utc
    assert timedelta(days=3600) < lifetime < timedelta(days=3700)
    assert isinstance(ca.key.curve, ec.SECP256R1)


def test_corrupt_ca_certificate_is_reported_by_file_name_and_left_alone(tls_dir: Path) -> None:
    load_or_create_ca(tls_dir)
    (tls_dir / "ca.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n")

    with pytest.raises(ValueError, match=r"ca\.pem is not a readable PEM certificate"):
        load_or_create_ca(tls_dir)
    assert (tls_dir / "ca.pem").read_bytes().endswith(b"not base64\n")


def test_corrupt_ca_key_is_reported_by_file_name(tls_dir: Path) -> None:
    load_or_create_ca(tls_dir)
    (tls_dir / "ca-key.pem").write_bytes(b"garbage")

    with pytest.raises(ValueError, match=r"ca-key\.pem is not a readable"):
        load_or_create_ca(tls_dir)


def test_ca_key_from_another_ca_is_refused_as_a_mismatch(tmp_path: Path, tls_dir: Path) -> None:
    load_or_create_ca(tls_dir)
    other = load_or_create_ca(tmp_path / "other")
    (tls_dir / "ca-key.pem").write_bytes((tmp_path / "other" / "ca-key.pem").read_bytes())
    assert other.fingerprint

    with pytest.raises(ValueError, match=r"ca-key\.pem is not the key of .*ca\.pem"):
        load_or_create_ca(tls_dir)


def test_half_a_ca_is_reported_instead_of_being_recreated(tls_dir: Path) -> None:
    load_or_create_ca(tls_dir)
    (tls_dir / "ca.pem").unlink()

    with pytest.raises(ValueError, match=r"ca\.pem is missing but .*ca-key\.pem exists"):
        load_or_create_ca(tls_dir)
    assert not (tls_dir / "ca.pem").exists()


def test_ca_is_a_critical_path_length_zero_signing_authority(ca: CertificateAuthority) -> None:
    extensions = ca.certificate.extensions
    basic = extensions.get_extension_for_class(x509.BasicConstraints)
    usage = extensions.get_extension_for_class(x509.KeyUsage)
    assert basic.critical
    assert basic.value.ca
    assert basic.value.path_length == 0
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    assert extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def test_ca_name_constraints_are_critical_and_permit_only_lan_names(
    ca: CertificateAuthority,
) -> None:
    extension = ca.certificate.extensions.get_extension_for_class(x509.NameConstraints)
    assert extension.critical
    assert extension.value.excluded_subtrees is None
    permitted = extension.value.permitted_subtrees
    assert permitted is not None
    dns = {tree.value for tree in permitted if isinstance(tree, x509.DNSName)}
    networks = {str(tree.value) for tree in permitted if isinstance(tree, x509.IPAddress)}
    assert dns == {"localhost", "local"}
    assert networks == {
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    }
    assert len(permitted) == len(dns) + len(networks)


# --- what a verifier makes of it --------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        x509.DNSName("council-box.local"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("192.168.1.20")),
        x509.IPAddress(ipaddress.ip_address("fd12:3456::7")),
    ],
)
def test_server_certificate_verifies_against_the_ca_for_each_lan_name(
    ca: CertificateAuthority, tls_dir: Path, subject: x509.GeneralName
) -> None:
    server, _ = ensure_server_certificate(
        tls_dir,
        ca,
        ["council-box.local", "localhost"],
        ["192.168.1.20", "fd12:3456::7"],
    )
    _verify(ca, _leaf(server), subject)


@pytest.mark.parametrize(
    "forged",
    [
        x509.DNSName("example.com"),
        x509.DNSName("evillocal"),
        x509.DNSName("local.example.com"),
        x509.IPAddress(ipaddress.ip_address("8.8.8.8")),
        x509.IPAddress(ipaddress.ip_address("2001:4860:4860::8888")),
    ],
)
def test_leaf_for_a_public_name_signed_with_the_ca_key_is_rejected_by_name_constraints(
    ca: CertificateAuthority, forged: x509.GeneralName
) -> None:
    with pytest.raises(VerificationError, match="name constraints"):
        _verify(ca, _forge_leaf(ca, forged), forged)


def test_forged_leaf_for_a_lan_name_does_verify_so_the_rejections_are_the_constraints(
    ca: CertificateAuthority,
) -> None:
    name = x509.DNSName("printer.local")
    _verify(ca, _forge_leaf(ca, name), name)


@pytest.mark.parametrize(
    ("dns_names", "ip_addresses"),
    [(["example.com"], []), (["box.local", "evillocal"], []), ([], ["8.8.8.8"])],
)
def test_issuing_for_a_public_name_or_address_is_refused(
    ca: CertificateAuthority, tls_dir: Path, dns_names: list[str], ip_addresses: list[str]
) -> None:
    with pytest.raises(ValueError, match="outside the CA's name constraints"):
        ensure_server_certificate(tls_dir, ca, dns_names, ip_addresses)
    assert not (tls_dir / "server.pem").exists()


@pytest.mark.parametrize(
    ("dns_names", "ip_addresses"),
    [(["*.local"], []), (["bad_name.local"], []), ([], ["192.168.1"]), ([], [])],
)
def test_malformed_or_empty_name_sets_are_refused(
    ca: CertificateAuthority, tls_dir: Path, dns_names: list[str], ip_addresses: list[str]
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        ensure_server_certificate(tls_dir, ca, dns_names, ip_addresses)


def test_lifetimes_longer_than_browsers_accept_are_refused(
    ca: CertificateAuthority, tls_dir: Path
) -> None:
    with pytest.raises(ValueError, match="1 to 30 days"):
        ensure_server_certificate(tls_dir, ca, ["box.local"], [], days=90)


# --- the server certificate -------------------------------------------------------------------


def test_server_certificate_is_a_short_lived_server_auth_leaf(
    ca: CertificateAuthority, tls_dir: Path
) -> None:
    now = datetime.now(UTC)
    server, issued = ensure_server_certificate(tls_dir, ca, ["Box.Local."], ["192.168.1.20"])
    leaf = _leaf(server)
    extensions = leaf.extensions

    assert issued
    assert server.dns_names == ("box.local",)
    assert server.ip_addresses == ("192.168.1.20",)
    assert server.not_after == leaf.not_valid_after_utc
    assert leaf.not_valid_before_utc < now - timedelta(minutes=1)
    assert leaf.not_valid_after_utc - now <= timedelta(days=30, minutes=1)
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH]
    )
    usage = extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    authority = extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_key_id = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert authority.key_identifier == ca_key_id.value.digest


def test_server_pem_holds_the_leaf_then_the_ca(ca: CertificateAuthority, tls_dir: Path) -> None:
    server, _ = ensure_server_certificate(tls_dir, ca, ["box.local"], [])
    chain = x509.load_pem_x509_certificates(server.cert_path.read_bytes())
    assert chain[1:] == [ca.certificate]
    chain[0].verify_directly_issued_by(ca.certificate)


def test_unchanged_request_returns_the_same_bytes_without_reissuing(
    ca: CertificateAuthority, tls_dir: Path
) -> None:
    first, issued = ensure_server_certificate(
        tls_dir, ca, ["box.local", "localhost"], ["192.168.1.20", "127.0.0.1"]
    )
    cert_bytes, key_bytes = first.cert_path.read_bytes(), first.key_path.read_bytes()

    again, reissued = ensure_server_certificate(
        tls_dir, ca, ["localhost", "box.local"], ["127.0.0.1", "192.168.1.20"]
    )

    assert issued
    assert not reissued
    assert again == first
    assert again.cert_path.read_bytes() == cert_bytes
    assert again.key_path.read_bytes() == key_bytes


def test_a_changed_address_set_reissues_the_certificate(
    ca: CertificateAuthority, tls_dir: Path
) -> None:
    first, _ = ensure_server_certificate(tls_dir, ca, ["box.local"], ["192.168.1.20"])
    old = first.cert_path.read_bytes()

    moved, issued = ensure_server_certificate(tls_dir, ca, ["box.local"], ["10.0.0.7"])

    assert issued
    assert moved.ip_addresses == ("10.0.0.7",)
    assert moved.cert_path.read_bytes() != old
    _verify(ca, _leaf(moved), x509.IPAddress(ipaddress.ip_address("10.0.0.7")))


def test_a_certificate_close_to_expiry_is_reissued(ca: CertificateAuthority, tls_dir: Path) -> None:
    first, _ = ensure_server_certificate(tls_dir, ca, ["box.local"], [])
    week_later, issued_early = ensure_server_certificate(
        tls_dir, ca, ["box.local"], [], now=first.not_after - timedelta(days=8)
    )
    near_expiry = first.not_after - timedelta(days=3)

    renewed, issued = ensure_server_certificate(tls_dir, ca, ["box.local"], [], now=near_expiry)

    assert not issued_early
    assert week_later == first
    assert issued
    assert renewed.not_after > first.not_after
    assert renewed.not_after - near_expiry == timedelta(days=30)


def test_a_certificate_from_another_ca_is_reissued(tmp_path: Path, tls_dir: Path) -> None:
    other = load_or_create_ca(tmp_path / "other")
    ensure_server_certificate(tls_dir, other, ["box.local"], [])
    ca = load_or_create_ca(tls_dir)

    server, issued = ensure_server_certificate(tls_dir, ca, ["box.local"], [])

    assert issued
    _verify(ca, _leaf(server), x509.DNSName("box.local"))


@pytest.mark.parametrize("damaged", ["server.pem", "server-key.pem"])
def test_a_damaged_or_mismatched_server_file_is_reissued(
    ca: CertificateAuthority, tls_dir: Path, tmp_path: Path, damaged: str
) -> None:
    ensure_server_certificate(tls_dir, ca, ["box.local"], [])
    ensure_server_certificate(tmp_path / "elsewhere", ca, ["box.local"], [])
    (tls_dir / damaged).write_bytes((tmp_path / "elsewhere" / damaged).read_bytes())

    server, issued = ensure_server_certificate(tls_dir, ca, ["box.local"], [])

    assert issued
    key = serialization.load_pem_private_key(server.key_path.read_bytes(), password=None)
    assert key.public_key() == _leaf(server).public_key()


def test_server_files_are_written_atomically_with_a_private_key(
    ca: CertificateAuthority, tls_dir: Path
) -> None:
    ensure_server_certificate(tls_dir, ca, ["box.local"], [])
    ensure_server_certificate(tls_dir, ca, ["box.local"], ["192.168.1.20"])

    names = sorted(path.name for path in tls_dir.iterdir())
    assert names == ["ca-key.pem", "ca.pem", "server-key.pem", "server.pem"]
    assert _mode(tls_dir / "server-key.pem") == 0o600


# --- a real handshake -------------------------------------------------------------------------


def _fetch_over_tls(server: ServerCertificate, client: ssl.SSLContext) -> bytes:
    """Serve one TLS connection on loopback and read what it sends through `client`."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(server.cert_path, server.key_path)
    server_errors: list[OSError] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)
        port = listener.getsockname()[1]

        def serve() -> None:
            try:
                connection, _ = listener.accept()
                with connection:
                    connection.settimeout(10)
                    with server_context.wrap_socket(connection, server_side=True) as tls:
                        tls.sendall(b"council")
            except OSError as exc:  # the client refusing our certificate lands here
                server_errors.append(exc)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                client.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                return tls.recv(64)
        finally:
            thread.join(10)


def test_tls_handshake_on_loopback_succeeds_for_a_client_trusting_the_ca(
    ca: CertificateAuthority, tls_dir: Path
) -> None:
    # IP-only on purpose: OpenSSL then checks a host-like common name against the DNS
    # constraints, so this also proves the leaf's common name is not mistaken for one.
    server, _ = ensure_server_certificate(tls_dir, ca, [], ["127.0.0.1"])
    client = ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    assert client.check_hostname

    assert _fetch_over_tls(server, client) == b"council"


def test_tls_handshake_fails_verification_for_a_client_without_the_ca(
    ca: CertificateAuthority, tls_dir: Path
) -> None:
    server, _ = ensure_server_certificate(tls_dir, ca, [], ["127.0.0.1"])
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

    with pytest.raises(ssl.SSLCertVerificationError):
        _fetch_over_tls(server, client)


# --- the iPhone profile -----------------------------------------------------------------------


def test_ios_profile_installs_the_ca_der_as_a_root(ca: CertificateAuthority) -> None:
    profile = plistlib.loads(ios_profile(ca), fmt=plistlib.FMT_XML)

    assert profile["PayloadType"] == "Configuration"
    assert profile["PayloadDisplayName"] == "council CA"
    assert profile["PayloadVersion"] == 1
    [payload] = profile["PayloadContent"]
    assert payload["PayloadType"] == "com.apple.security.root"
    assert payload["PayloadContent"] == ca.certificate.public_bytes(serialization.Encoding.DER)
    assert ca.fingerprint in profile["PayloadDescription"]


def test_ios_profile_uuids_are_stable_per_ca_and_differ_between_cas(
    ca: CertificateAuthority, tls_dir: Path, tmp_path: Path
) -> None:
    def ids(authority: CertificateAuthority) -> tuple[str, str, str]:
        profile = plistlib.loads(ios_profile(authority))
        payload = profile["PayloadContent"][0]
        return profile["PayloadUUID"], payload["PayloadUUID"], profile["PayloadIdentifier"]

    first = ids(ca)
    reloaded = load_or_create_ca(tls_dir)

    assert ids(reloaded) == first
    assert ios_profile(reloaded) == ios_profile(ca)
    assert first[0] != first[1]
    assert set(ids(load_or_create_ca(tmp_path / "other"))).isdisjoint(first)


# --- this machine's names ---------------------------------------------------------------------


def test_lan_addresses_are_all_private_or_unique_local(ca: CertificateAuthority) -> None:
    addresses = lan_addresses()

    for text in addresses:
        ip = ipaddress.ip_address(text)
        assert str(ip) == text
        assert not ip.is_loopback
        if ip.version == 4:
            assert ip.is_private or ip in CGNAT
        else:
            assert ip in ipaddress.ip_network("fc00::/7")
    parsed = [ipaddress.ip_address(text) for text in addresses]
    assert parsed == sorted(parsed, key=lambda ip: (ip.version, int(ip)))
    assert len(set(parsed)) == len(parsed)


def test_this_machines_own_names_can_all_be_certified(
    ca: CertificateAuthority, tls_dir: Path
) -> None:
    server, issued = ensure_server_certificate(
        tls_dir, ca, [local_hostname(), "localhost"], [*lan_addresses(), "127.0.0.1"]
    )
    assert issued
    _verify(ca, _leaf(server), x509.DNSName(local_hostname()))


def test_local_hostname_is_the_first_label_as_an_mdns_name() -> None:
    name = local_hostname()
    assert re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.local", name)


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [
        ("Council-Box.fritz.box", "council-box.local"),
        ("Jörg's MacBook_Pro", "j-rg-s-macbook-pro.local"),
        ("-" * 10, "council.local"),
        ("a" * 80, "a" * 63 + ".local"),
    ],
)
def test_local_hostname_sanitises_what_the_system_reports(
    monkeypatch: pytest.MonkeyPatch, hostname: str, expected: str
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: hostname)
    assert local_hostname() == expected
