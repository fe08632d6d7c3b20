"""Show: one module per format, each a pure function of a `Profile`.

text (tables), compare, html (one self-contained page), timeline (SVG/PNG Gantt chart),
trace (Chrome trace-event JSON); base holds the colours they share, chromium the
headless-browser screenshots.
"""
