"""The quotes example: fan out HTTP calls concurrently from an async view."""
