"""The HTTP layer: FastAPI app, thin routes and ASGI middleware.

Only this package imports the web framework."""
