"""GitHub: the REST client (origin-bound), the sticky PR comment and pull requests."""
