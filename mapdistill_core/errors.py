"""The errors bad input causes, and those of an experiment's runs, in one place.

Each message names the file, key, field, topic or option at fault. ``MapdistillError`` is the base
of bad input: the command line prints any of them as one line and exits with code 2; ``RunError`` the
base of a run that cannot go on (exit code 1). This module imports
nothing, so the command line can name these errors without loading torch.
"""


class MapdistillError(ValueError):
    """Bad input, named in the message (the command line: one line, exit code 2)."""


class ConfigError(MapdistillError):
    """A config file has an unknown key, a missing key or a value of the wrong type."""


class OptionError(MapdistillError):
    """An option's value is valid alone but not with the inputs (a sample index past the scene's end,
    an output path that is a folder)."""


class OutputError(MapdistillError):
    """An output cannot be written where the user asked (read-only, a file where a folder must be, a
    bag that exists), found before any work; the message names the option and the path given."""


class MapFileError(MapdistillError):
    """A vector-map file is malformed; the message names the file, sample and field."""


class CheckpointError(MapdistillError):
    """A checkpoint is unreadable, not ours, or does not fit its model config."""


class SampleFileError(MapdistillError):
    """A sample file is missing, truncated or has a field of the wrong shape or type."""


class NuScenesError(SampleFileError):
    """A nuScenes folder lacks a table, a file or a map, or a split, scene or location name is unknown."""


class BagError(MapdistillError):
    """A bag that cannot be read or replayed (names the bag and what it lacks)."""


class RunError(Exception):
    """An experiment's run cannot go on, not because of bad input: the command line prints it as one
    line and exits with code 1."""


class RunLockedError(RunError):
    """Another process holds the run folder's lock (it is training that run now)."""


class RunFailedError(RunError):
    """A run's training failed or ended without a validated checkpoint; names the run and its log."""


class TeacherNotReadyError(RunError):
    """A distilled run cannot start: the teacher runs have not finished, none will produce a teacher,
    or the shipped teacher is not the weights its record names."""
