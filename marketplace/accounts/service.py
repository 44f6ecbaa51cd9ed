"""Organizations, users and API keys: creation, visibility, authentication, revocation."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.orm import Session

from marketplace.accounts import keys
from marketplace.accounts.cache import PrincipalCache
from marketplace.accounts.models import ApiKey, Organization, User
from marketplace.accounts.principal import Principal
from marketplace.audit.service import record_event
from marketplace.core.db import unless_busy, utcnow
from marketplace.core.errors import Conflict, Forbidden, NotFound

# Writing last_used_at on every request would make every read a write; a minute is precise
# enough to answer "is this key still in use?".
LAST_USED_RESOLUTION = timedelta(minutes=1)


_KEY_LOOKUP = (
    select(
        ApiKey.id,
        ApiKey.key_hash,
        ApiKey.revoked_at,
        ApiKey.last_used_at,
        User.id,
        User.organization_id,
        User.role,
        Organization.kind,
    )
    .join(User, User.id == ApiKey.user_id)
    .join(Organization, Organization.id == User.organization_id)
    .where(ApiKey.prefix == bindparam("prefix"))
)


# Bookkeeping never makes a request wait. On PostgreSQL the key's row may be locked by another
# request of the same key until that one commits (an import's transaction holds it for as long
# as the import runs): then this request leaves last_used_at to a later one. On SQLite,
# core.db.unless_busy does the same for the database's write lock.
_MARK_USED = (
    update(ApiKey)
    .where(
        ApiKey.id.in_(
            select(ApiKey.id)
            .where(ApiKey.id == bindparam("key_id"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(last_used_at=bindparam("now"))
)


def authenticate(
    session: Session,
    raw_key: str,
    *,
    now: datetime | None = None,
    cache: PrincipalCache | None = None,
) -> Principal | None:
    """Return the principal of a valid, unrevoked key; None otherwise (no hint which).

    With a cache, a key checked a moment ago is answered from memory (accounts.cache says for
    how long a revocation elsewhere may go unseen)."""
    prefix = keys.parse_prefix(raw_key)
    if prefix is None:
        return None
    digest = keys.hash_key(raw_key)
    generation = 0
    if cache is not None:
        cached = cache.get(digest)
        if cached is not None:
            return cached
        generation = cache.generation
    # One indexed Core query, built once, on the session's connection: no ORM machinery (its
    # execution events, its result objects) for the hot path.
    row = session.connection().execute(_KEY_LOOKUP, {"prefix": prefix}).one_or_none()
    if row is None:
        return None
    key_id, key_hash, revoked_at, last_used_at, user_id, org_id, role, kind = row
    if not keys.digest_matches(digest, key_hash) or revoked_at is not None:
        return None
    principal = Principal(
        user_id=user_id, organization_id=org_id, kind=kind, role=role, key_id=key_id
    )
    now = now or utcnow()
    if last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION:
        with unless_busy(session):
            session.execute(_MARK_USED, {"key_id": key_id, "now": now})
    elif cache is not None:
        # Only a key whose mark is recent: the next lookup past the minute marks it again.
        cache.put(digest, principal, generation)
    return principal


def visible_organizations(principal: Principal) -> Select[Organization]:
    stmt = select(Organization)
    if not principal.is_operator:
        stmt = stmt.where(Organization.id == principal.organization_id)
    return stmt


def get_organization(session: Session, principal: Principal, org_id: str) -> Organization:
    org = session.scalars(
        visible_organizations(principal).where(Organization.id == org_id)
    ).one_or_none()
    if org is None:
        raise NotFound(f"organization {org_id} not found")
    return org


def create_organization(
    session: Session, principal: Principal, *, name: str, kind: str
) -> Organization:
    """Create an organization (operators only)."""
    if not principal.is_operator:
        raise Forbidden("only operators create organizations")
    org = Organization(name=name, kind=kind)
    session.add(org)
    session.flush()
    record_event(
        session,
        principal,
        "organization.created",
        object_id=org.id,
        organization_id=org.id,
        data={"name": name, "kind": kind},
    )
    return org


def add_user(
    session: Session, principal: Principal, org_id: str, *, email: str, role: str
) -> tuple[User, str]:
    """Add a user to an organization and issue their first key (operators or the org's owners).

    An address may belong to several organizations, so whether it is in use elsewhere is
    never asked, and never told: only a second user with it in this organization is a 409."""
    org = get_organization(session, principal, org_id)
    if not (principal.is_operator or principal.is_owner):
        raise Forbidden("only an owner of the organization, or an operator, adds users")
    email = email.strip().lower()
    taken = session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.organization_id == org.id, User.email == email)
    )
    if taken:
        raise Conflict(
            "this organization already has a user with this email",
            errors={"email": ["Already a user of this organization."]},
        )
    user = User(organization_id=org.id, email=email, role=role)
    session.add(user)
    session.flush()
    record_event(
        session,
        principal,
        "user.created",
        object_id=user.id,
        organization_id=org.id,
        data={"role": role},
    )
    _, raw = _issue_key(session, principal, user)
    return user, raw


def _issue_key(session: Session, actor: Principal | None, user: User) -> tuple[ApiKey, str]:
    raw, prefix, digest = keys.generate_key()
    api_key = ApiKey(user_id=user.id, prefix=prefix, key_hash=digest)
    api_key.user = user
    session.add(api_key)
    session.flush()
    record_event(
        session,
        actor,
        "api_key.created",
        object_id=api_key.id,
        organization_id=user.organization_id,
        data={"user_id": user.id},
    )
    return api_key, raw


def create_api_key(session: Session, principal: Principal) -> tuple[ApiKey, str]:
    """Issue another key to the calling user."""
    user = session.get(User, principal.user_id)
    if user is None:
        raise NotFound("user not found")
    return _issue_key(session, principal, user)


def visible_api_keys(principal: Principal) -> Select[ApiKey]:
    """Your own keys; an owner also sees the organization's keys; operators see all."""
    stmt = select(ApiKey).join(User, ApiKey.user_id == User.id)
    if principal.is_operator:
        return stmt
    if principal.is_owner:
        return stmt.where(User.organization_id == principal.organization_id)
    return stmt.where(ApiKey.user_id == principal.user_id)


def revoke_api_key(
    session: Session,
    principal: Principal,
    key_id: str,
    *,
    now: datetime | None = None,
    cache: PrincipalCache | None = None,
) -> ApiKey:
    """Revoke a key at once; revoking twice is harmless. `cache`: the process's principals,
    which forget the key now and when the revocation commits."""
    api_key = session.scalars(visible_api_keys(principal).where(ApiKey.id == key_id)).one_or_none()
    if api_key is None:
        raise NotFound(f"API key {key_id} not found")
    if cache is not None:
        cache.forget_key_on_commit(session, api_key.id)
    if api_key.revoked_at is None:
        api_key.revoked_at = now or utcnow()
        record_event(
            session,
            principal,
            "api_key.revoked",
            object_id=api_key.id,
            organization_id=api_key.user.organization_id,
            data={"user_id": api_key.user_id},
        )
    return api_key


# Built once: session.get() builds its statement on every call (a quarter of its time).
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))


def get_user(session: Session, principal: Principal) -> User:
    user = session.execute(_USER_BY_ID, {"user_id": principal.user_id}).scalar_one_or_none()
    if user is None:
        raise NotFound("user not found")
    return user


def bootstrap_operator(
    session: Session, *, email: str, org_name: str = "Clearcut Operations"
) -> tuple[User, str]:
    """Create an operator organization and owner (or a new key for an existing operator user).

    The address may also belong to other organizations: only its operator membership counts."""
    email = email.strip().lower()
    user = session.scalars(
        select(User)
        .join(Organization, Organization.id == User.organization_id)
        .where(User.email == email, Organization.kind == "operator")
        .order_by(User.id)
        .limit(1)
    ).first()
    if user is not None:
        _, raw = _issue_key(session, None, user)
        return user, raw
    org = Organization(name=org_name, kind="operator")
    session.add(org)
    session.flush()
    record_event(
        session,
        None,
        "organization.created",
        object_id=org.id,
        organization_id=org.id,
        data={"name": org_name, "kind": "operator"},
    )
    user = User(organization_id=org.id, email=email, role="owner")
    user.organization = org
    session.add(user)
    session.flush()
    record_event(
        session,
        None,
        "user.created",
        object_id=user.id,
        organization_id=org.id,
        data={"role": "owner"},
    )
    _, raw = _issue_key(session, None, user)
    return user, raw
