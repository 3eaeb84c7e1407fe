"""sohoa HTTP API: ``api.app.create_app(settings)`` (FastAPI), authentication and the reading
rule in ``api.auth``, problem+json errors in ``api.errors``; see docs/api.md."""
