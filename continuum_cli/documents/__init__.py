"""Documents for models that cannot read them: PDFs become text with page markers.

`pdf` extracts (pypdf, in a worker process), `pool` runs the workers with a hard time limit,
`cache` keeps extractions by content hash, `reader` ties them together for the request path,
and `resolve` rewrites a Messages request's file, PDF and URL sources before translation.
"""
