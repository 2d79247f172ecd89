"""Header links of an organization's pages: settings only for members who may use some of them."""

from django import template

from accounts.access import actor_of
from accounts.views_admin import sections_for

register = template.Library()


@register.simple_tag(takes_context=True)
def organization_links(context) -> dict:
    """{"settings": url of the first administration page the member may use, or None;
    "tokens": url of their API tokens page, or None}."""
    request = context.get("request")
    organization = getattr(request, "organization", None)
    if organization is None or getattr(request, "membership", None) is None:
        return {"settings": None, "tokens": None}
    prefix = f"/o/{organization.slug}/"
    sections = sections_for(actor_of(request))
    administration = [section for section in sections if section.administration]
    return {
        "settings": f"{prefix}{administration[0].path}" if administration else None,
        "tokens": next((f"{prefix}{s.path}" for s in sections if s.key == "tokens"), None),
    }
