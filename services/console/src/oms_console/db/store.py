"""The console's own tables: staff, sessions, failed sign-ins, the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from oms_console.db.tables import audit_log, sessions, sign_in_failures, staff
from oms_console.domain.roles import Role


class StaffExists(Exception):
    pass


@dataclass(frozen=True)
class StaffMember:
    id: int
    name: str
    role: Role
    password_hash: str
    disabled: bool


@dataclass(frozen=True)
class Session:
    token_hash: str
    staff: StaffMember
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    flash: dict[str, str] | None = None


def _member(row: Any) -> StaffMember:
    return StaffMember(row.id, row.name, Role(row.role), row.password_hash, row.disabled)


class ConsoleStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # -- staff ----------------------------------------------------------------

    async def count_staff(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(staff))).scalar_one())

    async def create_staff(self, name: str, role: Role, password_hash: str) -> StaffMember:
        try:
            async with self.engine.begin() as conn:
                row = (
                    await conn.execute(
                        insert(staff)
                        .values(name=name, role=role.value, password_hash=password_hash)
                        .returning(staff)
                    )
                ).one()
        except IntegrityError as exc:
            raise StaffExists(name) from exc
        return _member(row)

    async def create_first_staff(
        self, name: str, role: Role, password_hash: str
    ) -> StaffMember | None:
        """Create the account only if there is none at all (several replicas may
        start at once: a transaction-scoped advisory lock lets one of them do it)."""
        async with self.engine.begin() as conn:
            await conn.execute(select(func.pg_advisory_xact_lock(0x0C0450)))
            if (await conn.execute(select(func.count()).select_from(staff))).scalar_one():
                return None
            row = (
                await conn.execute(
                    insert(staff)
                    .values(name=name, role=role.value, password_hash=password_hash)
                    .returning(staff)
                )
            ).one()
        return _member(row)

    async def find_staff(self, name: str) -> StaffMember | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(staff).where(staff.c.name == name))).first()
        return _member(row) if row else None

    async def set_password_hash(self, staff_id: int, password_hash: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(staff).where(staff.c.id == staff_id).values(password_hash=password_hash)
            )

    # -- sessions -------------------------------------------------------------

    async def create_session(
        self,
        token_hash: str,
        staff_id: int,
        csrf_token: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(sessions).values(
                    token_hash=token_hash,
                    staff_id=staff_id,
                    csrf_token=csrf_token,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires_at,
                )
            )

    async def find_session(self, token_hash: str) -> Session | None:
        query = (
            select(sessions, staff)
            .join(staff, staff.c.id == sessions.c.staff_id)
            .where(sessions.c.token_hash == token_hash)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return Session(
            token_hash=row.token_hash,
            staff=_member(row),
            csrf_token=row.csrf_token,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            flash=row.flash,
        )

    async def touch_session(self, token_hash: str, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(sessions).where(sessions.c.token_hash == token_hash).values(last_seen_at=now)
            )

    async def end_session(self, token_hash: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash))

    async def end_sessions_before(self, idle_since: datetime, now: datetime) -> int:
        """Delete sessions idle since before `idle_since` or past their absolute end."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(sessions).where(
                    (sessions.c.last_seen_at < idle_since) | (sessions.c.expires_at <= now)
                )
            )
        return int(result.rowcount or 0)

    async def set_flash(self, token_hash: str, kind: str, text: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(sessions)
                .where(sessions.c.token_hash == token_hash)
                .values(flash={"kind": kind, "text": text})
            )

    async def clear_flash(self, token_hash: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(sessions).where(sessions.c.token_hash == token_hash).values(flash=None)
            )

    # -- failed sign-ins ------------------------------------------------------

    async def record_failure(self, username: str, address: str, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(sign_in_failures).values(username=username, address=address, occurred_at=now)
            )

    async def account_failures(self, username: str, since: datetime) -> list[datetime]:
        query = select(sign_in_failures.c.occurred_at).where(
            sign_in_failures.c.username == username, sign_in_failures.c.occurred_at >= since
        )
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def address_failures(self, address: str, since: datetime) -> int:
        query = (
            select(func.count())
            .select_from(sign_in_failures)
            .where(sign_in_failures.c.address == address, sign_in_failures.c.occurred_at >= since)
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def clear_account_failures(self, username: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(sign_in_failures).where(sign_in_failures.c.username == username)
            )

    async def forget_failures_before(self, before: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(sign_in_failures).where(sign_in_failures.c.occurred_at < before)
            )

    # -- audit log ------------------------------------------------------------

    async def audit(
        self,
        staff_name: str,
        action: str,
        target: str | None,
        outcome: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(audit_log).values(
                    staff_name=staff_name,
                    action=action,
                    target=target,
                    outcome=outcome,
                    detail=detail or {},
                )
            )

    async def audit_entries(
        self, *, before_id: int | None = None, limit: int = 100, target: str | None = None
    ) -> Sequence[dict[str, Any]]:
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(audit_log.c.id < before_id)
        if target is not None:
            query = query.where(audit_log.c.target == target)
        async with self.engine.connect() as conn:
            return [dict(row) for row in (await conn.execute(query)).mappings()]
