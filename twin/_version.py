"""The twin's version (stored in run metadata; also ``twin.__version__``)."""

__version__ = "0.1.0"
