"""URL helpers shared by the apps' API route lists."""

from django.urls import re_path


def route(pattern: str, view, name: str | None = None):
    """An API route. Label Studio's clients call paths with and without the trailing slash (POST
    too), so `pattern` is written without it and matches both ways."""
    return re_path(rf"^{pattern}/?$", view.as_view(), name=name)
