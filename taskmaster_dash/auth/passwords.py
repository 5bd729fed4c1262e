"""Password hashing (argon2id via argon2-cffi) and the password strength rule.

bcrypt hashes made by the original TaskMaster API are still accepted; needs_rehash() is true for
them, so the sign-in that accepts one replaces it with an argon2 hash.

At most one hash per CPU runs at a time: each takes 64 MiB and four threads, so a flood of
parallel sign-ins would otherwise starve PostgreSQL and the other requests of CPU (pool
checkouts then time out) and the process of memory; the others wait their turn.
"""

from __future__ import annotations

import os
import threading

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
_hashing = threading.BoundedSemaphore(os.cpu_count() or 1)


def hash_password(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    with _hashing:
        if password_hash.startswith(_BCRYPT_PREFIXES):
            return _verify_bcrypt(password_hash, password)
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def _verify_bcrypt(password_hash: str, password: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), password_hash.encode())
    except ValueError:  # a malformed hash, or a password over bcrypt's 72 bytes
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than today's: upgrade it on login."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def password_problem(password: str, username: str = "") -> str | None:
    """A sentence saying why the password is too weak, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"The password must be at least {MIN_PASSWORD_LENGTH} characters long."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"The password must be at most {MAX_PASSWORD_LENGTH} characters long."
    kinds = sum(
        [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if kinds < 3:
        return (
            "The password must mix at least three of: lower-case letters, upper-case letters, "
            "digits, symbols."
        )
    if username and username.lower() in password.lower():
        return "The password must not contain the username."
    return None
