"""`favor serve`: the search API and page (FastAPI app in `app.py`, page in `static/index.html`)."""
