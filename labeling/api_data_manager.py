"""Placeholder: routes of this feature module (see labeling/urls.py)."""

urlpatterns: list = []
