"""Pages: landing / organization chooser, signup, new organization, an organization's home."""

from allauth.account.utils import complete_signup, setup_user_email
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect, render

from accounts import selectors, services
from accounts.access import actor_of, can
from accounts.forms import OrganizationForm, SignupForm
from sso.sessions import sso_organization_id


def _add_errors(form, exc: ValidationError) -> None:
    field_of = {"slug": "slug", "organization": "organization", "email": "email", "password": "password"}
    for field, messages in exc.message_dict.items():
        form.add_error(field_of.get(field), messages)


def home(request):
    if not request.user.is_authenticated:
        return render(request, "accounts/landing.html")
    memberships = [m for m in selectors.memberships_of_user(user=request.user) if m.is_active]
    made_by = sso_organization_id(request.session)
    if made_by is not None:
        # A single sign-on session opens its own organization only (sso/sessions.py).
        memberships = [m for m in memberships if m.organization_id == made_by]
    if len(memberships) == 1 and not request.GET.get("choose"):
        return redirect(f"/o/{memberships[0].organization.slug}/")
    return render(request, "accounts/chooser.html", {"memberships": memberships})


def signup_view(request):
    if request.user.is_authenticated:
        return redirect("organization-new")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                user, organization = services.signup(
                    email=data["email"], password=data["password"], organization_title=data["organization"],
                    first_name=data["first_name"], last_name=data["last_name"], slug=data["slug"] or None,
                )
                setup_user_email(request, user, [])
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return complete_signup(
                request, user, settings.ACCOUNT_EMAIL_VERIFICATION, f"/o/{organization.slug}/"
            )
    return render(request, "accounts/signup.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def organization_new(request):
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organization = services.organization_create_with_owner(
                user=request.user, title=form.cleaned_data["organization"], slug=form.cleaned_data["slug"] or None
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return redirect(f"/o/{organization.slug}/")
    return render(request, "accounts/organization_new.html", {"form": form}, status=400 if form.errors else 200)


def organization_home(request):
    """`/o/<slug>/`: the organization's front page with the projects the member may open (the
    middleware already checked membership)."""
    from labeling.access import visible_projects
    from labeling.models import Project

    actor = actor_of(request)
    projects = list(visible_projects(actor, Project.objects.order_by("title", "id")).only(
        "id", "title", "description", "workspace_id", "created_by_id"))
    for project in projects:
        project.manageable = can(actor, "projects.change", project)
    return render(request, "accounts/organization_home.html", {"projects": projects})
