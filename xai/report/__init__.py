"""Report: figure makers (artifact in, file out), page builders (``pages_*``: ``build(site) -> Built``), the
shared leaf :mod:`xai.report.page` and the engine :mod:`xai.report.render` (artifacts in, Markdown out)."""
