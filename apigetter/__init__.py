"""apigetter: keep a personal archive of your data from many HTTP APIs."""

__version__ = "0.1.0"
