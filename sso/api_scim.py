"""SCIM 2.0 service provider (`/scim/v2/...`) and its settings API (`/api/scim/...`)."""

scim_urlpatterns: list = []
urlpatterns: list = []
