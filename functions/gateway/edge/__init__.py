"""The HTTP edge: reading requests (bounded, strict JSON), the request log, the error guard, the OpenAPI body
schemas, session hints from clients, and serving an answer (streamed or whole) back in the client's shape."""
