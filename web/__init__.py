"""The web app: FastAPI routes, schemas, templates and static files."""
