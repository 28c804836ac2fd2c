"""Reading a registry: sources of (path, bytes), the loader, schemas and the parse cache."""
