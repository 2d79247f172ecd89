"""SAML settings API (`/api/saml/settings`, `/validate-metadata-url`). Filled by the SAML work."""

urlpatterns: list = []
