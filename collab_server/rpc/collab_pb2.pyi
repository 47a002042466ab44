from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetDocumentRequest(_message.Message):
    __slots__ = ("document", "fields")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    document: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, document: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("document", "texts", "state", "version")
    class TextsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    document: str
    texts: _containers.ScalarMap[str, str]
    state: bytes
    version: str
    def __init__(self, document: _Optional[str] = ..., texts: _Optional[_Mapping[str, str]] = ..., state: _Optional[bytes] = ..., version: _Optional[str] = ...) -> None: ...

class ListDocumentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DocumentSummary(_message.Message):
    __slots__ = ("document", "loaded", "connections", "presence", "updated_at")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    document: str
    loaded: bool
    connections: int
    presence: int
    updated_at: float
    def __init__(self, document: _Optional[str] = ..., loaded: _Optional[bool] = ..., connections: _Optional[int] = ..., presence: _Optional[int] = ..., updated_at: _Optional[float] = ...) -> None: ...

class ListDocumentsResponse(_message.Message):
    __slots__ = ("documents",)
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[DocumentSummary]
    def __init__(self, documents: _Optional[_Iterable[_Union[DocumentSummary, _Mapping]]] = ...) -> None: ...

class RangeEdit(_message.Message):
    __slots__ = ("start", "end", "text")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    text: str
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class FindReplace(_message.Message):
    __slots__ = ("find", "replace")
    FIND_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    find: str
    replace: str
    def __init__(self, find: _Optional[str] = ..., replace: _Optional[str] = ...) -> None: ...

class TextEdit(_message.Message):
    __slots__ = ("range", "find")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    FIND_FIELD_NUMBER: _ClassVar[int]
    range: RangeEdit
    find: FindReplace
    def __init__(self, range: _Optional[_Union[RangeEdit, _Mapping]] = ..., find: _Optional[_Union[FindReplace, _Mapping]] = ...) -> None: ...

class EditRequest(_message.Message):
    __slots__ = ("document", "version", "field", "actor", "edits", "text")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    EDITS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    document: str
    version: str
    field: str
    actor: str
    edits: _containers.RepeatedCompositeFieldContainer[TextEdit]
    text: str
    def __init__(self, document: _Optional[str] = ..., version: _Optional[str] = ..., field: _Optional[str] = ..., actor: _Optional[str] = ..., edits: _Optional[_Iterable[_Union[TextEdit, _Mapping]]] = ..., text: _Optional[str] = ...) -> None: ...

class EditResponse(_message.Message):
    __slots__ = ("document", "version", "text", "applied", "changed")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    document: str
    version: str
    text: str
    applied: int
    changed: bool
    def __init__(self, document: _Optional[str] = ..., version: _Optional[str] = ..., text: _Optional[str] = ..., applied: _Optional[int] = ..., changed: _Optional[bool] = ...) -> None: ...

class Suggestion(_message.Message):
    __slots__ = ("id", "author", "version", "field", "edits", "status", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    EDITS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    author: str
    version: str
    field: str
    edits: _containers.RepeatedCompositeFieldContainer[RangeEdit]
    status: str
    created_at: float
    def __init__(self, id: _Optional[str] = ..., author: _Optional[str] = ..., version: _Optional[str] = ..., field: _Optional[str] = ..., edits: _Optional[_Iterable[_Union[RangeEdit, _Mapping]]] = ..., status: _Optional[str] = ..., created_at: _Optional[float] = ...) -> None: ...

class SuggestResponse(_message.Message):
    __slots__ = ("document", "suggestion")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    SUGGESTION_FIELD_NUMBER: _ClassVar[int]
    document: str
    suggestion: Suggestion
    def __init__(self, document: _Optional[str] = ..., suggestion: _Optional[_Union[Suggestion, _Mapping]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("document", "from_version", "from_seq", "include_presence")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_PRESENCE_FIELD_NUMBER: _ClassVar[int]
    document: str
    from_version: str
    from_seq: int
    include_presence: bool
    def __init__(self, document: _Optional[str] = ..., from_version: _Optional[str] = ..., from_seq: _Optional[int] = ..., include_presence: _Optional[bool] = ...) -> None: ...

class PresenceState(_message.Message):
    __slots__ = ("client_id", "clock", "state_json")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLOCK_FIELD_NUMBER: _ClassVar[int]
    STATE_JSON_FIELD_NUMBER: _ClassVar[int]
    client_id: int
    clock: int
    state_json: str
    def __init__(self, client_id: _Optional[int] = ..., clock: _Optional[int] = ..., state_json: _Optional[str] = ...) -> None: ...

class DocumentEvent(_message.Message):
    __slots__ = ("update", "presence", "version")
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    update: bytes
    presence: PresenceChange
    version: str
    def __init__(self, update: _Optional[bytes] = ..., presence: _Optional[_Union[PresenceChange, _Mapping]] = ..., version: _Optional[str] = ...) -> None: ...

class PresenceChange(_message.Message):
    __slots__ = ("states",)
    STATES_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedCompositeFieldContainer[PresenceState]
    def __init__(self, states: _Optional[_Iterable[_Union[PresenceState, _Mapping]]] = ...) -> None: ...

class SyncMessage(_message.Message):
    __slots__ = ("document", "message")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    document: str
    message: bytes
    def __init__(self, document: _Optional[str] = ..., message: _Optional[bytes] = ...) -> None: ...

class SetPresenceRequest(_message.Message):
    __slots__ = ("document", "agent", "name", "color", "model", "ttl_seconds", "cursor_index", "cursor_length")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CURSOR_INDEX_FIELD_NUMBER: _ClassVar[int]
    CURSOR_LENGTH_FIELD_NUMBER: _ClassVar[int]
    document: str
    agent: str
    name: str
    color: str
    model: str
    ttl_seconds: float
    cursor_index: int
    cursor_length: int
    def __init__(self, document: _Optional[str] = ..., agent: _Optional[str] = ..., name: _Optional[str] = ..., color: _Optional[str] = ..., model: _Optional[str] = ..., ttl_seconds: _Optional[float] = ..., cursor_index: _Optional[int] = ..., cursor_length: _Optional[int] = ...) -> None: ...

class SetPresenceResponse(_message.Message):
    __slots__ = ("document", "client_id", "ttl_seconds")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    document: str
    client_id: int
    ttl_seconds: float
    def __init__(self, document: _Optional[str] = ..., client_id: _Optional[int] = ..., ttl_seconds: _Optional[float] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("query", "limit")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    query: str
    limit: int
    def __init__(self, query: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class SearchHit(_message.Message):
    __slots__ = ("document", "start", "end", "snippet", "score")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    document: str
    start: int
    end: int
    snippet: str
    score: float
    def __init__(self, document: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., snippet: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SearchHit]
    def __init__(self, results: _Optional[_Iterable[_Union[SearchHit, _Mapping]]] = ...) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ("document", "limit")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    document: str
    limit: int
    def __init__(self, document: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class Version(_message.Message):
    __slots__ = ("seq", "timestamp", "actors", "update_bytes", "kind")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ACTORS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_BYTES_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    seq: int
    timestamp: float
    actors: _containers.RepeatedScalarFieldContainer[str]
    update_bytes: int
    kind: str
    def __init__(self, seq: _Optional[int] = ..., timestamp: _Optional[float] = ..., actors: _Optional[_Iterable[str]] = ..., update_bytes: _Optional[int] = ..., kind: _Optional[str] = ...) -> None: ...

class GetHistoryResponse(_message.Message):
    __slots__ = ("document", "versions")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    document: str
    versions: _containers.RepeatedCompositeFieldContainer[Version]
    def __init__(self, document: _Optional[str] = ..., versions: _Optional[_Iterable[_Union[Version, _Mapping]]] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ("document", "seq", "field")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    document: str
    seq: int
    field: str
    def __init__(self, document: _Optional[str] = ..., seq: _Optional[int] = ..., field: _Optional[str] = ...) -> None: ...

class GetVersionResponse(_message.Message):
    __slots__ = ("document", "seq", "text")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    document: str
    seq: int
    text: str
    def __init__(self, document: _Optional[str] = ..., seq: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class GetActivityRequest(_message.Message):
    __slots__ = ("document", "limit")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    document: str
    limit: int
    def __init__(self, document: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class Activity(_message.Message):
    __slots__ = ("seq", "timestamp", "actor", "origin_node", "update_bytes")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_NODE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_BYTES_FIELD_NUMBER: _ClassVar[int]
    seq: int
    timestamp: float
    actor: str
    origin_node: str
    update_bytes: int
    def __init__(self, seq: _Optional[int] = ..., timestamp: _Optional[float] = ..., actor: _Optional[str] = ..., origin_node: _Optional[str] = ..., update_bytes: _Optional[int] = ...) -> None: ...

class GetActivityResponse(_message.Message):
    __slots__ = ("document", "activity")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    document: str
    activity: _containers.RepeatedCompositeFieldContainer[Activity]
    def __init__(self, document: _Optional[str] = ..., activity: _Optional[_Iterable[_Union[Activity, _Mapping]]] = ...) -> None: ...

class RestoreRequest(_message.Message):
    __slots__ = ("document", "seq", "field", "actor")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    document: str
    seq: int
    field: str
    actor: str
    def __init__(self, document: _Optional[str] = ..., seq: _Optional[int] = ..., field: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class RestoreResponse(_message.Message):
    __slots__ = ("document", "restored_from", "changed")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    RESTORED_FROM_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    document: str
    restored_from: int
    changed: bool
    def __init__(self, document: _Optional[str] = ..., restored_from: _Optional[int] = ..., changed: _Optional[bool] = ...) -> None: ...
