"""The turn engine: one user message and the model's answer, stored together or not at all.

Both front doors use it: the HTTP route calls :meth:`TurnEngine.post`; the streaming route claims
the turn (:meth:`TurnEngine.claim`) and a worker answers it (:meth:`TurnEngine.answer`) with a
model call that streams. The steps and their order are the same on both: validation, ownership,
session expiry, rate limit, idempotency by ``client_message_id``, PII masking of the input, its
moderation, the model call, masking and moderation of the output, sealing and the one transactional write.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from chatbot_security.conversation.errors import (
    QuotaExceededError,
    RateLimitedError,
    SchemaError,
    SessionFullError,
)
from chatbot_security.conversation.model_providers import ChatMessage, ModelAnswer, ModelProvider
from chatbot_security.conversation.models import Message, MessageRequest, Turn
from chatbot_security.conversation.moderation import Moderator, NoModeration
from chatbot_security.conversation.owner import Owner, Ownership, reject_other_anonymous_session
from chatbot_security.conversation.ports import ConversationStore, RateLimits
from chatbot_security.conversation.quotas import Quotas
from chatbot_security.conversation.sealing import readable_history, sealed_record
from chatbot_security.conversation.token_usage import history_within, publish_usage
from chatbot_security.conversation.turn_claims import ClaimedTurn, Loaded, TurnReplays
from chatbot_security.identity.identity_keys import IdentityKeys
from chatbot_security.platform.settings import Settings
from chatbot_security.privacy import crypto, pii
from chatbot_security.storage.errors import ChargeRefused, ConflictError
from chatbot_security.storage.ratelimit import RateCharge
from chatbot_security.storage.records import SessionRecord, rfc3339
from chatbot_security.storage.usage import QuotaRefused, Reservation

MAX_WRITE_ATTEMPTS = 3
RATE_WINDOW_SECONDS = 60
POST_RATE_SCOPE = "post"

#: (the readable history, the masked user text) -> the model's answer (its text unmasked) and usage
ModelCall = Callable[[Sequence[ChatMessage], str], ModelAnswer]


@dataclass
class TurnEngine:
    settings: Settings
    store: ConversationStore
    data_keys: crypto.DataKeys
    identity: IdentityKeys
    model: ModelProvider
    rate_limiter: RateLimits
    clock: Callable[[], float] = time.time
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    sleep: Callable[[float], None] = time.sleep
    moderator: Moderator = field(default_factory=NoModeration)
    quotas: Quotas = field(kw_only=True)  # required: no turn is answered unaccounted

    def post(self, owner: Owner, session_id: str, request: MessageRequest) -> Turn:
        """The HTTP turn: claim, then answer with the configured model.

        DynamoDB calls on a warm turn: one Query (session and recent history), one transaction that
        charges the rate counter and reserves the turn's tokens (and claims ``client_message_id`` when
        there is one), one transaction that stores the turn and settles its tokens. KMS is called only
        the first time a container sees a session.
        """
        claimed = self.claim(owner, session_id, request)
        if isinstance(claimed, Turn):
            return claimed  # a repeat: the first answer, no model call
        return self.answer(claimed, self.model.reply)

    def claim(self, owner: Owner, session_id: str, request: MessageRequest) -> ClaimedTurn | Turn:
        """Ownership, session expiry, rate limit and the idempotency claim, before any model call.

        A finished turn with the same ``client_message_id`` comes back as that Turn (a replay); one
        still being answered waits for it, within the model's timeout.
        """
        if len(request.content) > self.settings.max_message_chars:
            raise SchemaError(f"content: at most {self.settings.max_message_chars} characters")
        reject_other_anonymous_session(owner, session_id)
        found, recent = self.store.session_with_recent(session_id, self.model.history_window)
        session = self._ownership.usable_owned(owner, found)
        key = self.data_keys.unwrap(session_id, session.wrapped_key)
        charge = self.rate_limiter.charge(POST_RATE_SCOPE, owner.key, self.settings.rate_limit_per_minute,
                                          RATE_WINDOW_SECONDS)  # fmt: skip
        content = self._mask(request.content)
        loaded = Loaded(session, recent, key)
        # The worst case of what the model will be sent: refused (429) at once if it can never fit.
        planned = self.quotas.plan(owner.key, owner.kind, readable_history(key, recent), content)
        if request.client_message_id is None:
            self._require_room(session)
            held = self._reserve(charge, planned)
            return ClaimedTurn(owner, session_id, content, claim=None, loaded=loaded, reservation=held)
        claimed = self._replays.claim(owner, session, key, (str(request.client_message_id), content), charge,
                                      reservation=planned)  # fmt: skip
        if isinstance(claimed, Turn):
            return claimed  # a repeat: no tokens
        claim, held = claimed
        return ClaimedTurn(owner, session_id, content, claim=claim, loaded=loaded, reservation=held)

    def answer(self, claimed: ClaimedTurn, call: ModelCall) -> Turn:
        """Moderate the (masked) message, call the model on the readable history (cut to what the turn
        reserved), mask and moderate its answer, seal and store the turn, settling its tokens, in one
        transaction. If anything fails before the write (a message moderation refuses included), the claim
        is released, nothing is stored, and the tokens are settled as :meth:`Quotas.after_failure` says.

        The moderated text (names anonymised) is what the model sees and what is stored. The turn's time,
        which bounds each moderation call, is ``MODEL_TIMEOUT_SECONDS`` from here."""
        reservation = claimed.reservation
        if reservation is None:
            raise ConflictError("a turn without a token reservation")  # never answered unaccounted
        answered = False
        try:
            deadline = self.clock() + self.settings.model_timeout_seconds
            session, recent, key = claimed.loaded or self._reload(claimed)
            question = self.moderator.check_input(claimed.content, time_left=deadline - self.clock())
            history = history_within(self.settings, readable_history(key, recent), question,
                                     reservation.tokens)  # fmt: skip
            received_ms = int(self.clock() * 1000)
            reply = call(history, question)
            answered = True
            tokens = (reply.input_tokens, reply.output_tokens)
            text, moderated = self._moderated_reply(reply, deadline)
            replied_ms = max(int(self.clock() * 1000), received_ms + 1)
            turn = self._store_turn(claimed, session, key, question=(question, received_ms),
                                    answer=(text, replied_ms), marks=(moderated, reply.interrupted), tokens=tokens,
                                    settlement=(reservation, sum(tokens)))  # fmt: skip
        except BaseException as error:
            if claimed.claim is not None:
                self._replays.release(claimed.claim)
            self.quotas.after_failure(reservation, error, answered=answered)
            raise
        publish_usage(self.settings, *tokens)
        return turn

    def _reserve(self, charge: RateCharge, reservation: Reservation) -> Reservation:
        """Charge the rate counter and hold the turn's tokens in one write (no claim to ride in)."""
        try:
            return self.store.reserve_turn(charge, reservation)
        except ChargeRefused:
            raise RateLimitedError(retry_after_seconds=charge.retry_after_seconds) from None
        except QuotaRefused as refused:
            raise QuotaExceededError(refused.retry_after_seconds) from None

    @property
    def _ownership(self) -> Ownership:
        return Ownership(self.store.get_session, self.clock)

    @property
    def _replays(self) -> TurnReplays:
        return TurnReplays(self.settings, self.store, self.identity, self._ownership, self._require_room,
                           self.clock, self.new_id, self.sleep)  # fmt: skip

    def _reload(self, claimed: ClaimedTurn) -> Loaded:
        """A claim answered in another process (the streaming worker): read the session again, which
        also checks that it is still the owner's and still usable."""
        found, recent = self.store.session_with_recent(claimed.session_id, self.model.history_window)
        session = self._ownership.usable_owned(claimed.owner, found)
        return Loaded(session, recent, self.data_keys.unwrap(claimed.session_id, session.wrapped_key))

    def _store_turn(
        self, claimed: ClaimedTurn, session: SessionRecord, key: bytes, *, question: tuple[str, int],
        answer: tuple[str, int], tokens: tuple[int, int], settlement: tuple[Reservation, int],
        marks: tuple[bool, bool] = (False, False),
    ) -> Turn:  # fmt: skip
        """``marks``: the answer's (moderated, interrupted), bound to its ciphertext like its role."""
        session_id, claim = claimed.session_id, claimed.claim
        user_id, assistant_id = self.new_id(), self.new_id()
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            seq = session.message_count
            messages = [
                sealed_record(key, crypto.MessageBinding(session_id, user_id, "user", seq + 1, question[1]),
                              question[0]),
                replace(sealed_record(key, crypto.MessageBinding(session_id, assistant_id, "assistant", seq + 2,
                                                                 answer[1], *marks), answer[0]), tokens=tokens),
            ]  # fmt: skip
            try:
                self.store.append_turn(session, messages, now=int(self.clock()), claim=claim, settlement=settlement)
            except ConflictError:
                lost = True
            else:
                lost = False
            if lost:  # handled outside the except: the errors below are not caused by the conflict
                if claim is not None:
                    replayed = self._replays.after_lost_write(claim, key)
                    if replayed is not None:
                        return replayed
                session = self._ownership.owned_session(claimed.owner, session_id)  # the count moved
                self._require_room(session)
                continue
            return Turn(
                user_message=Message(message_id=user_id, role="user", content=question[0],
                                     created_at=rfc3339(question[1] / 1000)),
                assistant_message=Message(message_id=assistant_id, role="assistant", content=answer[0],
                                          created_at=rfc3339(answer[1] / 1000), moderated=marks[0],
                                          interrupted=marks[1]),
            )  # fmt: skip
        raise ConflictError("session kept changing")

    def _require_room(self, session: SessionRecord) -> None:
        if session.message_count + 2 > self.settings.max_messages_per_session:
            raise SessionFullError()

    def _moderated_reply(self, answer: ModelAnswer, deadline: float) -> tuple[str, bool]:
        """The answer to store, masked, and whether moderation replaced it: by the provider's own guardrail
        (Converse) or content filter, or by the moderator's check of the answer."""
        if answer.moderated:
            return self.settings.moderation_refusal_text, True
        text, moderated = self.moderator.check_output(self._mask(answer.text), time_left=deadline - self.clock())
        return self._mask(text), moderated

    def _mask(self, text: str) -> str:
        return pii.mask_pii(text) if self.settings.pii_masking else text
