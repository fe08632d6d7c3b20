"""Show: one module per format, each a pure function of a `Profile`.

text (tables), compare, html (one self-contained page), timeline (SVG Gantt chart),
trace (Chrome trace-event JSON); base holds the colours they share. (A timeline as a PNG:
`wiredprof.testing.chromium.write_png`, for the docs and benchmark reports.)
"""
