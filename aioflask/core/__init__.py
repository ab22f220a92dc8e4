"""aioflask's Flask-free core: the greenlet bridge, ASGI <-> WSGI, the request body.

Nothing here imports Flask, Werkzeug, Jinja or a server (see README.md in
this directory); the import contracts in ``pyproject.toml`` check it.
"""
