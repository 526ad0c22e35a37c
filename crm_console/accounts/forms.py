from django.contrib.auth.forms import AuthenticationForm


class ConsoleLoginForm(AuthenticationForm):
    """The stock form with autocomplete hints so password managers fill it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autofocus": True})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})
