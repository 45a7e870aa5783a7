"""The Users page's form: add a teammate with a password, or invite them by email."""

from django import forms
from django.contrib.auth import get_user_model, password_validation

from accounts.permissions import Role, default_role

User = get_user_model()


class AddUserForm(forms.Form):
    """A new user and their role; without a password, they are invited by email instead."""

    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=[("", "No role"), *Role.choices], required=False)
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to email an invitation: a link to choose their own password.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, label_suffix="", **kwargs)
        role = default_role()
        self.fields["role"].initial = role.value if role else ""

    def clean_username(self) -> str:
        username = User.normalize_username(self.cleaned_data["username"])
        User.username_validator(username)
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("A user with this name exists.")
        return username

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if email and User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("A user with this email address exists.")
        return email

    def clean(self) -> dict:
        data = super().clean()
        password = data.get("password")
        if password:
            candidate = User(username=data.get("username", ""), email=data.get("email", ""))
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        elif not data.get("email") and "email" not in self.errors:
            self.add_error("email", "Give an email address to invite them, or set a password.")
        return data

    @property
    def invites(self) -> bool:
        return not self.cleaned_data.get("password")

    @property
    def chosen_role(self) -> Role | None:
        return Role(self.cleaned_data["role"]) if self.cleaned_data.get("role") else None
