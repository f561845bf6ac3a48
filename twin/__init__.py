"""The AI-factory twin: a digital twin of an AI data center, energy in and tokens out."""

__version__ = "0.1.0"
