"""Errors the user can act on. The CLI prints their message (no traceback) and exits non-zero."""


class AssistantError(Exception):
    """Base class: the message says what happened and what to do."""


class ConfigError(AssistantError):
    pass


class InputError(AssistantError):
    """A path, file or question the assistant cannot use."""


class IndexMismatchError(AssistantError):
    """The index was built with another embedding model (or another incompatible setting)."""


class BackendUnavailableError(AssistantError):
    """A server the configuration points at (Chroma, Ollama) cannot be reached or refused."""


class NotFoundError(AssistantError):
    """Something asked for by its id is not there (or belongs to someone else: the same answer)."""
