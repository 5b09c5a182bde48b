"""Erasure of everything a user owns, that keeps going when one step fails (docs/security.md)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from chatbot_security.conversation.errors import ForbiddenError, NotFoundError, ServiceUnavailableError
from chatbot_security.conversation.ports import ConversationStore, RateLimits
from chatbot_security.identity.identity_keys import IdentityKeys
from chatbot_security.identity.principal import Principal
from chatbot_security.platform import audit
from chatbot_security.platform.observability import logger
from chatbot_security.platform.settings import Settings
from chatbot_security.privacy import crypto
from chatbot_security.storage.errors import ConflictError
from chatbot_security.storage.records import SessionRecord

POST_RATE_SCOPE = "post"


@dataclass
class Erasure:
    settings: Settings
    store: ConversationStore
    data_keys: crypto.DataKeys
    identity: IdentityKeys
    rate_limiter: RateLimits
    clock: Callable[[], float] = time.time

    def erase_user(self, principal: Principal, subject: str) -> int:
        """Admin erasure of every session of ``subject`` at the configured issuer; the number erased.

        The owner index is eventually consistent, and a session may end while this runs (the user's own
        delete, the cleanup): one already gone counts as erased and the others are still erased. When
        some session cannot be erased now, the rest still is and the caller gets a 503 with
        ``Retry-After``; repeating the call finishes the job.
        """
        actor = self.identity.owner_of(principal)
        issuer = self.settings.oidc_issuer
        target = self.identity.owner_of_user(issuer, subject) if issuer is not None else None
        if not self._is_admin(principal):
            audit.record("admin_erase_user", actor=actor, target=target, count=0, outcome="denied")
            raise ForbiddenError()
        if target is None:
            audit.record("admin_erase_user", actor=actor, target=None, count=0, outcome="not_found")
            raise NotFoundError()
        try:
            records = self.store.sessions_of(target)
        except Exception:
            audit.record("admin_erase_user", actor=actor, target=target, count=0, outcome="incomplete")
            raise
        erased = sum(_attempt(self.erase_for_good, record) for record in records)
        complete = _attempt(self.rate_limiter.forget, POST_RATE_SCOPE, target) and erased == len(records)
        # The index may not list a session created just before: the live counter (strongly consistent)
        # says whether any session of the user is still counted, and goes once none is. A retry, once the
        # index lists that session, erases it.
        complete = complete and _attempt(self._drop_live_counter, target)
        outcome: audit.Outcome = "erased" if complete else "incomplete"
        audit.record("admin_erase_user", actor=actor, target=target, count=erased, outcome=outcome)
        if not complete:
            raise ServiceUnavailableError()
        return erased

    def erase_for_good(self, record: SessionRecord) -> None:
        """Erase a session whatever state it is in; one already gone is erased (its leftovers swept)."""
        now = int(self.clock())
        # A ConflictError: purged meanwhile (the user's own delete, the cleanup); nothing left to end.
        with contextlib.suppress(ConflictError):
            self.store.mark_deleted(record, now)
        self.data_keys.forget(record.session_id)
        if self.store.claim_for_purge(record.session_id, now):
            self.store.purge_session(record.session_id)
        elif self.store.get_session(record.session_id) is None:
            self.store.purge_session(record.session_id)  # items a crashed purge may have left behind

    def _drop_live_counter(self, owner: str) -> None:
        if not self.store.drop_live_counter(owner):
            raise ConflictError("a session of the user is not in the owner index yet")

    def _is_admin(self, principal: Principal) -> bool:
        if principal.kind != "user" or self.settings.admin_role not in principal.roles:
            return False
        return principal.mfa or not self.settings.admin_require_mfa


def _attempt(step: Callable[..., object], *args: object) -> bool:
    """Run one step of an erasure; False (logged) when it failed, so that the others still run."""
    try:
        step(*args)
    except Exception as error:  # a retry of the whole erasure finishes this step
        logger.warning("erasure step failed", extra={"error_type": type(error).__name__})
        return False
    return True
