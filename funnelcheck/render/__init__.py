"""Renderers: turn results into text, JSON, Markdown, GitHub annotations. They never compute."""
