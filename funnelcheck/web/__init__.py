"""The dashboard: `dashboard` assembles the page's data, `page` renders the one HTML file, `serve` serves it."""
