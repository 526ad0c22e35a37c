"""How every console form ties its help text and errors to its field for screen readers.

Django names the ids a widget's `aria-describedby` points at `<id>_helptext` and `<id>_error`;
the console's templates (`includes/form_fields.html` and the pages that lay fields out
themselves) render the help as `<id>_helptext` and the errors as `<id>_errors`, the id pages and
tests address errors by. This bound field points at exactly those, so every described-by id exists.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.forms.boundfield import BoundField
from django.forms.renderers import DjangoTemplates
from django.utils.functional import cached_property


def help_id(auto_id: str) -> str:
    return f"{auto_id}_helptext"


def errors_id(auto_id: str) -> str:
    return f"{auto_id}_errors"


class ConsoleBoundField(BoundField):
    @property
    def aria_describedby(self) -> str | None:
        if self.field.widget.attrs.get("aria-describedby"):  # a widget that says it itself wins
            return None
        ids = []
        if self.auto_id and not self.is_hidden:
            if self.help_text:
                ids.append(help_id(self.auto_id))
            if self.errors:
                ids.append(errors_id(self.auto_id))
        return " ".join(ids)


class ConsoleFormRenderer(DjangoTemplates):
    """settings.FORM_RENDERER: Django's form templates, the console's bound field, and the error
    list of `templates/django/forms/errors/list/ul.html` (id `<id>_errors`, for the admin's forms
    too, whose widgets this bound field describes as well)."""

    bound_field_class = ConsoleBoundField

    @cached_property
    def engine(self):
        import django.forms

        return self.backend({
            "APP_DIRS": True, "NAME": "djangoforms", "OPTIONS": {},
            "DIRS": [Path(settings.BASE_DIR) / "templates",
                     Path(django.forms.__file__).parent / self.backend.app_dirname],
        })
