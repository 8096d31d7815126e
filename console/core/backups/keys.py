"""age keys of the backups: the recipients (public keys) backups are encrypted to, and the
identities (private keys) verification and restore decrypt with.

Recipients come from ``backup.recipients`` and ``backup.recipients_file`` (one per line, ``#``
comments, as ``age -R`` reads them); identities from ``backup.identity_file`` (what
``age-keygen`` writes). Errors name the setting and the file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pyrage

from console.config import BackupSettings
from console.core.errors import NotConfigured, OperationFailed

FINGERPRINT_HEX = 16


def fingerprint(recipient: str) -> str:
    """A recipient's fingerprint: the first 16 hex digits of sha256 of its ``age1…`` text."""
    return hashlib.sha256(recipient.encode()).hexdigest()[:FINGERPRINT_HEX]


@dataclass(frozen=True)
class Recipients:
    """The public keys a backup is encrypted to, as text (for fingerprints) and parsed."""

    texts: tuple[str, ...]
    keys: tuple[pyrage.x25519.Recipient, ...]

    @property
    def fingerprints(self) -> list[str]:
        """The recipients' fingerprints, in order."""
        return [fingerprint(text) for text in self.texts]


def require_recipients(settings: BackupSettings) -> None:
    """NotConfigured (exit 2) naming ``backup.recipients`` / ``backup.recipients_file`` when
    encryption is on and neither is set."""
    if settings.encryption and not settings.recipients and not settings.recipients_file:
        raise NotConfigured(
            "backup.encryption is true but no recipient is configured: set backup.recipients "
            '(e.g. ["age1…"], public keys from age-keygen) or backup.recipients_file, or set '
            "backup.encryption = false"
        )


def load_recipients(settings: BackupSettings) -> Recipients | None:
    """The configured recipients (inline, then from the file, duplicates once); None when
    encryption is off. OperationFailed names the file and line of anything unreadable."""
    if not settings.encryption:
        return None
    require_recipients(settings)
    texts = list(settings.recipients)
    if settings.recipients_file:
        texts += _recipients_file(Path(settings.recipients_file).expanduser())
    unique = tuple(dict.fromkeys(texts))
    keys = []
    for text in unique:
        try:
            keys.append(pyrage.x25519.Recipient.from_str(text))
        except pyrage.RecipientError as exc:
            raise OperationFailed(
                f"backup.recipients: {text!r} is not an age X25519 recipient ({exc})"
            ) from None
    if not keys:
        raise OperationFailed(
            f"backup.recipients_file {settings.recipients_file} lists no recipient"
        )
    return Recipients(unique, tuple(keys))


def _recipients_file(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OperationFailed(
            f"backup.recipients_file {path} cannot be read: {_why(exc)}"
        ) from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        try:
            pyrage.x25519.Recipient.from_str(entry)
        except pyrage.RecipientError:
            raise OperationFailed(
                f"backup.recipients_file {path} line {number} is not an age X25519 recipient "
                "(age1… from age-keygen -y)"
            ) from None
        found.append(entry)
    return found


def load_identities(settings: BackupSettings) -> list[pyrage.x25519.Identity]:
    """The private keys of ``backup.identity_file`` (``AGE-SECRET-KEY-1…`` lines, ``#``
    comments). NotConfigured when it is not set; OperationFailed when unreadable."""
    if not settings.identity_file:
        raise NotConfigured(
            "reading encrypted backups needs backup.identity_file (the age identity file "
            "written by age-keygen, whose public key is in backup.recipients)"
        )
    path = Path(settings.identity_file).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OperationFailed(f"backup.identity_file {path} cannot be read: {_why(exc)}") from None
    identities = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        try:
            identities.append(pyrage.x25519.Identity.from_str(entry))
        except pyrage.IdentityError:
            raise OperationFailed(
                f"backup.identity_file {path} line {number} is not an age identity "
                "(AGE-SECRET-KEY-1… from age-keygen)"
            ) from None
    if not identities:
        raise OperationFailed(f"backup.identity_file {path} holds no age identity")
    return identities


def configured_identities(settings: BackupSettings) -> list[pyrage.x25519.Identity]:
    """The identities reading backups back needs: those of ``backup.identity_file`` when
    encryption is on (or a file is set anyway, for backups taken while it was), else none."""
    if settings.encryption or settings.identity_file:
        return load_identities(settings)
    return []


def ensure_identity_file(path: Path) -> str:
    """An age identity in ``path`` (0600, as ``age-keygen -o`` writes it), generated when the
    file does not exist; returns its recipient (public key)."""
    if not path.exists():
        identity = pyrage.x25519.Identity.generate()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"# public key: {identity.to_public()}\n{identity}\n")
    settings = BackupSettings(identity_file=str(path))
    return str(load_identities(settings)[0].to_public())


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
