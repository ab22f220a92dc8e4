"""The benchmark apps: the same endpoints in every stack (see ``common``)."""
