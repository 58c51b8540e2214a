"""Exceptions raised by gensep. Every message names the file or value at fault and the fix."""


class GensepError(Exception):
    """Base class of all gensep errors."""


class AudioError(GensepError, ValueError):
    """Audio that cannot be used: missing, unreadable, empty, non-finite or badly shaped."""


class ConfigError(GensepError, ValueError):
    """A configuration file or value that does not match its schema."""


class DatasetError(GensepError):
    """A dataset that cannot be read as asked: a missing root, split, track or file."""


class TrainingError(GensepError, RuntimeError):
    """Training that cannot go on: a non-finite loss, data that ran out, a clashing workdir."""


class CheckpointError(GensepError):
    """A checkpoint that cannot be read: missing, incomplete or corrupted files."""
