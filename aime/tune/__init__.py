"""Reserved for a later issue (see README.md)."""
