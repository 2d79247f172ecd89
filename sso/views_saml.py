"""SAML pages: per organization (`/o/<slug>/saml/...`) and the public email-domain discovery login."""

page_urlpatterns: list = []
public_page_urlpatterns: list = []
