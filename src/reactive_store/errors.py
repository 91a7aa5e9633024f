"""The errors the engine raises, each with a short code and a message that names what was wrong."""

from __future__ import annotations

from typing import Any


class ReactiveStoreError(Exception):
    """Base class: an error whose message is safe and useful to send to a client."""

    code = "Error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConvexError(Exception):
    """Raised by a function to send structured `data` to the client as `errorData`.

    The client's error message is `data` when it is a string, else `data["message"]` when
    that is a string, else "ConvexError".
    """

    def __init__(self, data: Any) -> None:
        message = data if isinstance(data, str) else "ConvexError"
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            message = data["message"]
        super().__init__(message)
        self.data = data
        self.message = message


class ValidationError(ReactiveStoreError):
    """A value does not match its validator; `path` names the offending field."""

    code = "ValidationError"


class AnnotationError(ReactiveStoreError, TypeError):
    """A type hint (of a function parameter, its result or a table model) has no validator."""

    code = "AnnotationError"


class SchemaError(ReactiveStoreError):
    """A schema declaration is malformed, or cannot be pushed onto the stored data."""

    code = "SchemaError"


class InvalidIdError(ReactiveStoreError):
    """An id string is malformed or belongs to another table."""

    code = "InvalidId"


class FunctionNotFound(ReactiveStoreError):
    """No public function at that path (internal functions look missing to clients)."""

    code = "FunctionNotFound"


class PermissionDenied(ReactiveStoreError):
    """A caller without the admin key asked for an admin-only (`_system/...`) function."""

    code = "PermissionDenied"


class WrongFunctionKind(ReactiveStoreError):
    """A function was called through the endpoint for another kind (query vs mutation ...)."""

    code = "WrongFunctionKind"


class QueryError(ReactiveStoreError):
    """A `ctx.db` query was built or consumed wrongly (bad index range, unique() on many...)."""

    code = "QueryError"


class WriteError(ReactiveStoreError):
    """A write was refused: not in a mutation, missing document, system field..."""

    code = "WriteError"


class LimitExceeded(ReactiveStoreError):
    """A transaction or document went past one of the configured limits."""

    code = "LimitExceeded"


class FunctionTimeout(ReactiveStoreError):
    """A query or mutation ran past its time limit and was cancelled and rolled back."""

    code = "FunctionTimeout"


class ConflictError(ReactiveStoreError):
    """A mutation kept conflicting with concurrent ones and ran out of retries."""

    code = "Conflict"


class BadRequest(ReactiveStoreError):
    """A request that is malformed before any function runs (bad JSON, bad format, bad path)."""

    code = "BadRequest"

    def __init__(self, message: str, code: str = "BadRequest") -> None:
        super().__init__(message)
        self.code = code


class InternalError(ReactiveStoreError):
    """A failure of the server itself; the client sees a generic message, the log the cause."""

    code = "InternalServerError"


class FileError(ReactiveStoreError):
    """File storage refused an upload or a file operation; `status` is its HTTP status."""

    code = "FileError"
    status = 400


class InvalidUploadUrl(FileError):
    """An upload URL whose token is missing, malformed or not signed by this deployment."""

    code = "InvalidUploadUrl"


class UploadUrlExpired(FileError):
    code = "UploadUrlExpired"
    status = 403


class UploadUrlUsed(FileError):
    """Upload URLs are single-use: a second upload to one is refused."""

    code = "UploadUrlUsed"
    status = 409


class FileTooLarge(FileError):
    code = "FileTooLarge"
    status = 413


class UnsupportedContentType(FileError):
    code = "UnsupportedContentType"
    status = 415


class DigestMismatch(FileError):
    """The bytes received do not hash to the `Digest: sha-256=...` the client sent."""

    code = "DigestMismatch"


class UploadTimeout(FileError):
    code = "UploadTimeout"
    status = 408
