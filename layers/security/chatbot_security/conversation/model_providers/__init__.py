"""Model providers behind one interface (docs/contract.md section 6, rule 10): the echo model, Amazon
Bedrock (Converse and ConverseStream) and any OpenAI-compatible endpoint. Each answers with a
:class:`ModelAnswer` (text and token usage) or streams a :class:`ModelStream`."""

from chatbot_security.conversation.model_providers.base import (
    DEFAULT_SYSTEM_PROMPT,
    GUARDRAIL_FALLBACK,
    HISTORY_WINDOW,
    MAX_ATTEMPTS,
    MIN_ATTEMPT_SECONDS,
    ChatMessage,
    LazyModel,
    ModelAnswer,
    ModelProvider,
    ModelStream,
    estimate_tokens,
    retry_read_timeout,
    system_prompt,
)
from chatbot_security.conversation.model_providers.bedrock import (
    DEFAULT_BEDROCK_MODEL_ID,
    BedrockConverseModel,
    _bedrock_runtime,
)
from chatbot_security.conversation.model_providers.echo import EchoModel
from chatbot_security.conversation.model_providers.openai import OpenAiCompatibleModel
from chatbot_security.conversation.model_providers.openai_results import MAX_ANSWER_BYTES

_retry_read_timeout = retry_read_timeout

__all__ = [
    "DEFAULT_BEDROCK_MODEL_ID",
    "DEFAULT_SYSTEM_PROMPT",
    "GUARDRAIL_FALLBACK",
    "HISTORY_WINDOW",
    "MAX_ANSWER_BYTES",
    "MAX_ATTEMPTS",
    "MIN_ATTEMPT_SECONDS",
    "BedrockConverseModel",
    "ChatMessage",
    "EchoModel",
    "LazyModel",
    "ModelAnswer",
    "ModelProvider",
    "ModelStream",
    "OpenAiCompatibleModel",
    "_bedrock_runtime",
    "_retry_read_timeout",
    "estimate_tokens",
    "system_prompt",
]
