"""The one error family of model loading: what the rest of the project catches."""


class ModelLoadError(RuntimeError):
    """The embedding model could not be loaded from the local package."""


class ReaderLoadError(ModelLoadError):
    """The reader's weights or configuration are missing, altered, or do not fit."""


class ExportError(ModelLoadError):
    """The models could not be exported to ONNX, or an export is damaged."""
