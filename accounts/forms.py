from django import forms


class SignupForm(forms.Form):
    first_name = forms.CharField(label="First name", max_length=256)
    last_name = forms.CharField(label="Last name", max_length=256, required=False)
    email = forms.EmailField(label="Work email")
    password = forms.CharField(label="Password", widget=forms.PasswordInput, min_length=8)
    organization = forms.CharField(label="Organization name", max_length=200)
    slug = forms.CharField(
        label="Organization address (optional)", max_length=40, required=False,
        help_text="Letters, digits and hyphens; your pages will live at /o/<address>/.",
    )


class OrganizationForm(forms.Form):
    organization = forms.CharField(label="Organization name", max_length=200)
    slug = forms.CharField(label="Organization address (optional)", max_length=40, required=False)
