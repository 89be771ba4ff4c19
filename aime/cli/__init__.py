"""The ``aime`` command line: one module per command."""
