"""The web console: server-rendered pages (Jinja2 templates, HTMX for the small updates) on
the application-service verbs, served by ``lienwatch serve`` beside the REST API
(docs/console.md). No page queries the ORM itself, and nothing is loaded from the internet:
the front-end assets are shipped in ``static/``."""
