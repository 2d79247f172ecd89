"""SAML 2.0 and SCIM 2.0 per organization (public schema). Filled by the enterprise-SSO issue."""
