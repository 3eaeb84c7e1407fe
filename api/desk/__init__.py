"""The reception desk (Bộ phận Một cửa) web pages: receive scans, review, confirm, print a receipt.

``router`` is included by ``api.app.create_app``; see ``docs/desk.md``.
"""
from api.desk.routes import router

__all__ = ["router"]
