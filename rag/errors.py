"""One error base class; every message names the thing at fault and how to fix it."""


class RagError(Exception):
    """A user-facing problem: the message says what is wrong and what to run."""


class IndexMissingError(RagError):
    """No usable index where one was expected."""


class IndexMismatchError(RagError):
    """The index was built with other settings or articles."""


class ModelNotInstalledError(RagError):
    """An offline model copy is missing."""


class LLMError(RagError):
    """The answer model could not be reached or failed."""


class LLMCrashedError(LLMError):
    """The embedded answer server died (a signal or an exit code): the message says how, and whether it restarted."""

    def __init__(self, message: str, restarted: bool = False) -> None:
        super().__init__(message)
        self.restarted = restarted  # a new server is up: the next request may go ahead at once


class LLMTimeoutError(LLMError):
    """The answer model did not answer within RAG_LLM_TIMEOUT, retries included."""


class IndexBusyError(RagError):
    """Another build or update holds the index's writer lock."""


class IndexChangedError(RagError):
    """The index version being read was retired while a search ran (its Milvus rows are gone): ask again."""


class NothingMatchesError(RagError):
    """A search filter keeps no article of the index (the message says what the index holds)."""
