"""The bundled app's schema: chats, work orders, orchestrations, stored webhook events.

The chat tables are declared with types (TypedDicts), the rest with `v.*` validators: both
forms give the same tables. The type aliases below are what the chat functions use.
"""

# Times are float64 milliseconds since the epoch; all numbers are float64.
# Optional fields: chat_messages.metadata (tool calls) and chat_messages.attachments (files in
# file storage, with the name they were uploaded under); work_orders.embedding (set from title
# and prompt on create, or by setEmbedding); turns.finalResponse
# (absent while a turn runs), turns.items and turns.usage (as the agent reports them);
# worker_prs.notes; and the webhook bookkeeping fields error/nextAttemptAt/processedAt.
# No function scans a whole table: each reads through one of these indexes
# (work_orders.by_status_updated is for workers that poll orders by status).

from typing import Any, Literal, NotRequired, TypedDict

from reactive_store import Doc, Id, define_schema, define_table, v

Role = Literal["user", "assistant", "system"]
SessionId = Id["chat_sessions"]
MessageId = Id["chat_messages"]
StorageId = Id["_storage"]
Session = Doc["chat_sessions"]
Message = Doc["chat_messages"]


class ChatSession(TypedDict):
    userId: str
    title: str
    createdAt: float
    updatedAt: float


class Attachment(TypedDict):
    """A file in file storage, with the name it was uploaded under."""

    storageId: StorageId
    name: str
    contentType: str
    size: float


class ChatMessage(TypedDict):
    sessionId: SessionId
    role: Role
    content: str
    metadata: NotRequired[Any]
    attachments: NotRequired[list[Attachment]]
    createdAt: float


EMBEDDING_DIMENSIONS = 64  # functions/_embedding.py makes vectors of this length

STATUSES = ("draft", "submitted", "accepted", "running", "succeeded", "failed", "canceled")
LINK_KINDS = v.union(v.literal("github_issue"), v.literal("pr"), v.literal("commit"))

schema = define_schema({
    "chat_sessions": define_table(ChatSession)
        .index("by_user_updated", ["userId", "updatedAt"]).index("by_updated", ["updatedAt"]),
    "chat_messages": define_table(ChatMessage)
        .index("by_session_created", ["sessionId", "createdAt"])
        .search_index("search_content", search_field="content", filter_fields=["sessionId"]),
    "work_orders": define_table({
        "sessionId": v.id("chat_sessions"),
        "workflowType": v.string(),
        "prompt": v.string(),
        "title": v.string(),
        "status": v.union(*(v.literal(s) for s in STATUSES)),
        "requestedBy": v.string(),
        "createdAt": v.float64(),
        "updatedAt": v.float64(),
        "embedding": v.optional(v.array(v.float64())),
    }).index("by_session_created", ["sessionId", "createdAt"])
      .index("by_status_updated", ["status", "updatedAt"])
      # Exact search where the server has no pgvector: the demo's indexes are small.
      .vector_index("by_embedding", vector_field="embedding", dimensions=EMBEDDING_DIMENSIONS,
                    filter_fields=["sessionId"], exact_fallback=True),
    "work_order_args": define_table({
        "workOrderId": v.id("work_orders"),
        "name": v.string(),
        "value": v.any(),
    }).index("by_order_name", ["workOrderId", "name"]),
    "work_order_targets": define_table({
        "workOrderId": v.id("work_orders"),
        "targetRepo": v.string(),
        "targetBranch": v.string(),
    }).index("by_order", ["workOrderId"]),
    "work_order_links": define_table({
        "workOrderId": v.id("work_orders"),
        "kind": LINK_KINDS,
        "value": v.string(),
    }).index("by_order_kind", ["workOrderId", "kind"]),
    "orchestrations": define_table({
        "orchestrationId": v.string(),
        "topic": v.string(),
        "repoUrl": v.string(),
        "status": v.string(),
        "createdAt": v.float64(),
        "updatedAt": v.float64(),
    }).index("by_orchestration_id", ["orchestrationId"]),
    "turns": define_table({
        "orchestrationId": v.string(),
        "index": v.float64(),
        "threadId": v.string(),
        "finalResponse": v.optional(v.string()),
        "items": v.optional(v.any()),
        "usage": v.optional(v.any()),
        "createdAt": v.float64(),
    }).index("by_orchestration_index", ["orchestrationId", "index"]),
    "worker_prs": define_table({
        "orchestrationId": v.string(),
        "prUrl": v.string(),
        "branch": v.string(),
        "commitSha": v.string(),
        "notes": v.optional(v.string()),
        "createdAt": v.float64(),
    }).index("by_orchestration_created", ["orchestrationId", "createdAt"]),
    "webhook_events": define_table({
        "source": v.string(),
        "event": v.string(),
        "deliveryId": v.string(),
        "payload": v.any(),
        "receivedAt": v.float64(),
        "status": v.union(v.literal("received"), v.literal("processed"), v.literal("failed")),
        "attempts": v.float64(),
        "error": v.optional(v.string()),
        "nextAttemptAt": v.optional(v.float64()),
        "processedAt": v.optional(v.float64()),
    }).index("by_status_next", ["status", "nextAttemptAt"])
      .index("by_delivery", ["deliveryId"]),
})
