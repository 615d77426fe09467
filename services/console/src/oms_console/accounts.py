"""Staff accounts and sessions: creating users, signing in (with slow-down and
lockout), finding the session of a request, signing out."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from oms_console.db.store import ConsoleStore, Session, StaffMember
from oms_console.domain.lockout import LockoutPolicy, Verdict, assess
from oms_console.domain.roles import Role
from oms_console.settings import ConsoleSettings

log = logging.getLogger("oms.console.accounts")

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD_LENGTH = 12


class InvalidAccount(ValueError):
    """A name or password the console does not accept, with the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SignedIn:
    token: str
    session: Session


@dataclass(frozen=True)
class Refused:
    """Wrong name or password (`verdict` allowed), or not checked at all because of
    earlier failures (`verdict` says for how long)."""

    verdict: Verdict


def normalised_name(name: str) -> str:
    name = name.strip().lower()
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidAccount(
            "username", "1-64 characters: letters, digits, '.', '_' or '-', starting with one"
        )
    return name


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def policy_of(settings: ConsoleSettings) -> LockoutPolicy:
    return LockoutPolicy(
        window=timedelta(seconds=settings.console_failure_window_seconds),
        throttle_base=timedelta(seconds=settings.console_throttle_base_seconds),
        throttle_max=timedelta(seconds=settings.console_throttle_max_seconds),
        lockout_threshold=settings.console_lockout_threshold,
        lockout=timedelta(seconds=settings.console_lockout_seconds),
        address_limit=settings.console_address_failure_limit,
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


class Accounts:
    def __init__(
        self,
        store: ConsoleStore,
        settings: ConsoleSettings,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.settings = settings
        self.policy = policy_of(settings)
        self.idle = timedelta(minutes=settings.console_session_idle_minutes)
        self.lifetime = timedelta(hours=settings.console_session_max_hours)
        self.clock = clock
        # Argon2id with the library's (RFC 9106 low-memory) parameters.
        self.hasher = PasswordHasher()
        # Unknown names are checked against this, so they take as long as known ones.
        self._decoy = self.hasher.hash(secrets.token_urlsafe(16))

    def _check_password(self, password: str) -> str:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidAccount("password", f"at least {MIN_PASSWORD_LENGTH} characters, please")
        return self.hasher.hash(password)

    async def create_user(self, name: str, role: Role, password: str) -> StaffMember:
        return await self.store.create_staff(
            normalised_name(name), role, self._check_password(password)
        )

    async def ensure_first_admin(self, password: str) -> StaffMember | None:
        """The account `admin`, if no account exists yet."""
        created = await self.store.create_first_staff(
            "admin", Role.ADMIN, self._check_password(password)
        )
        if created is not None:
            log.info("created the first account, admin, from OMS_CONSOLE_ADMIN_PASSWORD")
        return created

    async def sign_in(self, name: str, password: str, address: str) -> SignedIn | Refused:
        now = self.clock()
        name = name.strip().lower()[:64]
        since = now - self.policy.window
        verdict = assess(
            self.policy,
            await self.store.account_failures(name, since),
            await self.store.address_failures(address, since),
            now,
        )
        if not verdict.allowed:
            log.warning(
                "sign-in refused before checking",
                extra={"username": name, "address": address, "reason": verdict.reason},
            )
            return Refused(verdict)
        member = await self.store.find_staff(name)
        if member is None or member.disabled or not self._verify(member, password):
            await self.store.record_failure(name, address, now)
            log.warning("failed sign-in", extra={"username": name, "address": address})
            return Refused(Verdict(allowed=True))
        await self.store.clear_account_failures(name)
        await self.rehash_if_needed(member, password)
        token = secrets.token_urlsafe(32)
        await self.store.create_session(
            token_hash(token), member.id, secrets.token_urlsafe(32), now, now + self.lifetime
        )
        session = await self.store.find_session(token_hash(token))
        assert session is not None
        log.info("signed in", extra={"username": name, "address": address})
        return SignedIn(token, session)

    def _verify(self, member: StaffMember | None, password: str) -> bool:
        try:
            self.hasher.verify(member.password_hash if member else self._decoy, password)
        except (VerificationError, InvalidHashError):
            return False
        return member is not None

    async def rehash_if_needed(self, member: StaffMember, password: str) -> None:
        if self.hasher.check_needs_rehash(member.password_hash):
            await self.store.set_password_hash(member.id, self.hasher.hash(password))

    async def session_for(self, token: str | None) -> Session | None:
        """The live session the cookie names; an expired one is ended."""
        if not token:
            return None
        session = await self.store.find_session(token_hash(token))
        if session is None:
            return None
        now = self.clock()
        if (
            now >= session.expires_at
            or now - session.last_seen_at >= self.idle
            or session.staff.disabled
        ):
            await self.store.end_session(session.token_hash)
            return None
        # A write per request is not needed: a tenth of the idle timeout (at most a
        # minute) is precise enough.
        if now - session.last_seen_at >= min(timedelta(minutes=1), self.idle / 10):
            await self.store.touch_session(session.token_hash, now)
        return session

    async def sign_out(self, token: str | None) -> None:
        if token:
            await self.store.end_session(token_hash(token))

    async def tidy(self) -> None:
        """Forget expired sessions and failures older than the window."""
        now = self.clock()
        await self.store.end_sessions_before(now - self.idle, now)
        await self.store.forget_failures_before(now - max(self.policy.window, self.policy.lockout))
