def organization(request):
    """The organization and membership of the current request, for page templates."""
    return {
        "organization": getattr(request, "organization", None),
        "membership": getattr(request, "membership", None),
    }
