"""Knobs of the request conversion, handed in by the caller (kiro_core reads no environment).

The defaults are the reference gateway's: they encode upstream limits that were found the hard way, so each one
says where it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiro_core.unified import ThinkingRequest


@dataclass(frozen=True)
class ConversionOptions:
    """Everything `convert.*` needs to know beyond the request itself."""

    # Kiro answers "Improperly formed request" to very long tool descriptions; longer ones move to the system
    # prompt. 0 turns the relocation off.
    tool_description_max_length: int = 10000
    # Off by default: the payload is forwarded once and Kiro's own size refusal is classified (the old ~615 KB limit
    # moved with 1M-context models, docs/protocol.md §Limits). A positive value refuses larger payloads locally.
    max_payload_bytes: int = 0
    # Ask for tag-injected reasoning when the client says nothing about thinking.
    fake_reasoning: bool = True
    # The thinking budget used when the client gives none.
    fake_reasoning_max_tokens: int = 4000
    # Upper bound for any thinking budget (a client's 31999 would otherwise make every answer slow). 0 = no cap.
    fake_reasoning_budget_cap: int = 10000
    # Sent as `profileArn` at the payload root when non-empty (the runtime host requires it).
    profile_arn: str = ""
    # Kiro rejects empty content; these stand in for it.
    empty_placeholder: str = "(empty)"
    empty_result_placeholder: str = "(empty result)"
    # Current-message text when the conversation ends with an assistant turn.
    continue_text: str = "Continue"
    # PR #158 of the reference gateway reports 400s when thinking tags sit next to toolResults; unconfirmed, and
    # the reference itself injects anyway. False skips the tags on turns that carry tool results.
    thinking_with_tool_results: bool = True
    # Kiro IDE 0.11's limit (docs/protocol.md §Documents and images): more documents in one message is refused with a
    # 400. 0 = no limit.
    max_documents_per_message: int = 5
    # Send the client's max_tokens inside additionalModelRequestFields (clamped to the schema). Off: a small client
    # max_tokens then cuts the model off while it is still thinking (docs/protocol.md §Native reasoning).
    native_reasoning_max_tokens: bool = False
    # `conversationState.agentTaskType` (Smithy enum vibe | spectask), as the Kiro IDE and CLI send it; "" omits it.
    agent_task_type: str = "vibe"
    # `agentContinuationId`, one per user turn (Kiro's CLI; docs/protocol.md §Request body). False omits it.
    agent_continuation: bool = True
    # `rootConversationId` on sub-agent requests (single-source, and its place in the body is not certain): off.
    root_conversation_id: bool = False
    # `cachePoint` markers on history entries (single-source, kiro_core.cache_points): off.
    cache_points: bool = False

    def cap_budget(self, budget: int) -> int:
        """`budget` limited by the cap (when set) and kept at least 1."""
        if self.fake_reasoning_budget_cap > 0:
            budget = min(budget, self.fake_reasoning_budget_cap)
        return max(1, budget)

    def default_thinking(self) -> ThinkingRequest:
        """What a request that says nothing about thinking gets."""
        if not self.fake_reasoning:
            return ThinkingRequest(enabled=False)
        return ThinkingRequest(enabled=True, budget_tokens=self.cap_budget(self.fake_reasoning_max_tokens))
