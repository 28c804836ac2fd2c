"""funnelcheck: a Git-native toolkit for conversion-funnel models."""

__version__ = "0.1.0"
