"""Report: figure makers (artifact in, file out) and the Jinja2 renderer (artifacts in, Markdown out)."""
