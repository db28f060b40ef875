"""Build time, first step: articles read from files, pages, feeds and addresses."""
