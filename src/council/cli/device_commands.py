"""Phones and other devices: `pair`, `devices`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from council.cli.common import (
    data_option,
    json_option,
    prepared_folder,
    print_json,
    reports_errors,
    say_err,
)
from council.settings import PAIRING_TTL, PAIRING_TTL_DEFAULT


@click.command()
@data_option
@click.option("--name", default=None, help="The device's name (else the phone names itself).")
@click.option(
    "--ttl",
    type=click.IntRange(PAIRING_TTL.low, PAIRING_TTL.high),
    default=PAIRING_TTL_DEFAULT,
    show_default=True,
    help="Seconds the code stays valid.",
)
@click.option(
    "--confirm",
    is_flag=True,
    help="Hold the pairing until you approve it here; both sides show a code.",
)
@json_option
@reports_errors
def pair(data: Path | None, name: str | None, ttl: int, confirm: bool, as_json: bool) -> None:
    """Mint a one-time pairing code and show it as a QR code for a phone to scan."""
    import time

    from council.asking import open_store
    from council.phone import await_confirmation, invite, qr_text

    with open_store(data) as db:
        folder = prepared_folder(data)
        made = invite(db, folder, name=name, ttl=ttl, confirm=confirm)
        if as_json:
            print_json(made.to_dict())
            if made.warning:
                say_err(f"warning: {made.warning}")
            return
        click.echo(qr_text(made.url))
        click.echo(f"Scan with the phone's camera, or open:\n  {made.url}")
        click.echo(
            f"The code works once, until {made.expires_at}. CA fingerprint (SHA-256): "
            f"{made.fingerprint}"
        )
        if made.warning:  # last, where it stays in sight under the QR code
            say_err(f"warning: {made.warning}")
        if made.comparison is None:
            return
        click.echo(f"Waiting for the phone; it will show {made.comparison}.")

        def ask(claim: Any) -> bool:
            who = f"{claim.name or 'A device'} at {claim.address}"
            question = f"{who} wants to pair and shows {claim.comparison}. Approve?"
            return click.confirm(question, default=False)

        paired = await_confirmation(db, made.comparison, ask, deadline=time.monotonic() + ttl)
        click.echo(f"paired {paired}" if paired else "not paired")


@click.group()
def devices() -> None:
    """Paired devices: list, rename, revoke (works whether or not the hub runs)."""


@devices.command("list")
@data_option
@json_option
@reports_errors
def devices_list(data: Path | None, as_json: bool) -> None:
    """List paired devices, revoked ones included."""
    from council.asking import open_store
    from council.store.devices import list_devices

    with open_store(data) as db:
        found = list_devices(db)
    if as_json:
        print_json([device.to_dict() for device in found])
        return
    if not found:
        click.echo("no paired devices: pair one with `council pair`")
    for device in found:
        seen = (device.last_seen_at or "never")[:16].replace("T", " ")
        state = f"revoked {device.revoked_at[:16].replace('T', ' ')}" if device.revoked_at else ""
        click.echo(
            f"{device.id}  {device.name:<24} last seen {seen} "
            f"{device.last_address or ''}  {state}".rstrip()
        )


@devices.command("revoke")
@click.argument("device_id")
@data_option
@reports_errors
def devices_revoke(device_id: str, data: Path | None) -> None:
    """Revoke a device: its token stops working on its next request."""
    from council.asking import open_store
    from council.store.devices import revoke_device

    with open_store(data) as db:
        device = revoke_device(db, device_id)
    click.echo(f"revoked {device.id} ({device.name})")


@devices.command("rename")
@click.argument("device_id")
@click.argument("name")
@data_option
@reports_errors
def devices_rename(device_id: str, name: str, data: Path | None) -> None:
    """Rename a device."""
    from council.asking import open_store
    from council.store.devices import rename_device

    with open_store(data) as db:
        device = rename_device(db, device_id, name)
    click.echo(f"renamed {device.id} to {device.name}")
