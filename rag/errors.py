"""The few errors the interfaces turn into messages for the user."""


class RagError(Exception):
    """Base of every error the user can act on."""


class QuestionError(RagError):
    """The question cannot be asked as it stands (empty, too long, nothing to search for)."""


class CollectionError(RagError):
    """The articles cannot be read or are inconsistent (a missing path, duplicate ids)."""


class IndexProblemError(RagError):
    """The saved index is missing, stale or corrupt."""


class IndexMissingError(IndexProblemError):
    """No index has been built in the given directory."""


class IndexStaleError(IndexProblemError):
    """The index was built from another collection or with other settings."""


class IndexCorruptError(IndexProblemError):
    """An index file is truncated, altered or unreadable."""


class IndexBusyError(IndexProblemError):
    """Another process holds the index directory's build lock for too long."""


class StorageError(RagError):
    """The index cannot be written: the disk is full, or the place is read-only or not ours."""


class FetchError(CollectionError):
    """A page or feed could not be fetched from its address."""


class ClusterError(RagError):
    """Ray is missing, or the cluster cannot be reached or fails the build."""


class MilvusError(RagError):
    """pymilvus is missing, the server cannot be reached, or it lacks the collection."""


class ModelError(RagError):
    """The embedding model or the reader cannot be loaded (missing, altered, or not exported)."""


class FeedbackError(RagError):
    """A verdict cannot be stored: it names a sentence the index lacks, or holds markup.

    `field` names the part of the verdict that is wrong (`question`, `shown`, `quote`, `note`).
    """

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field
