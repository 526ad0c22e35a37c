"""Campaign pages: settings, action catalogue, reward weights (with a live preview) and contact
policies (caps, quiet hours, consent rules, suppression list). Thin: forms validate, services
write, selectors read; every write is behind its permission and CSRF.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from crm_console.campaigns import campaign_files, selectors, services
from crm_console.campaigns.vocabulary import vocabulary as workspace_vocabulary
from crm_console.campaigns.forms import (
    ActionForm, CampaignCreateForm, CampaignFileForm, CampaignForm, CatalogueGenerateForm,
    ChannelCapFormSet, ChannelForm, ContactPolicyForm, OfferForm, RewardWeightsForm, SendWindowForm,
    SuppressionCheckForm, SuppressionUploadForm,
)
from crm_console.campaigns.models import (
    Action, Campaign, Channel, ContactPolicy, Offer, RewardWeights, SendWindow, SuppressionEntry,
)
from crm_console.campaigns.reward_preview import reward_preview
from crm_console.customers.models import Customer

EDIT_CATALOGUE = "campaigns.change_action"
ADD_ACTION = "campaigns.add_action"
EDIT_WEIGHTS = "campaigns.change_rewardweights"
EDIT_POLICY = "campaigns.change_contactpolicy"
EDIT_SUPPRESSION = "campaigns.add_suppressionentry"


def campaign_list(request: HttpRequest) -> HttpResponse:
    return render(request, "campaigns/campaign_list.html", {"campaigns": selectors.campaign_list()})


def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("contact_policy"), pk=pk)
    weights = RewardWeights.objects.filter(campaign=campaign).first()
    return render(request, "campaigns/campaign_detail.html", {
        "campaign": campaign, "actions": selectors.campaign_catalogue(campaign=campaign),
        "weights": weights.as_dict() if weights else None,
        "live_policy": campaign.policy_versions.filter(status="live").defer("artifact").first(),
    })


@permission_required("campaigns.add_campaign", raise_exception=True)
def campaign_new(request: HttpRequest) -> HttpResponse:
    """A new draft campaign; its catalogue comes next (the built-in "no contact" is there)."""
    form = CampaignCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        fields = dict(form.cleaned_data)
        try:
            campaign = services.campaign_create(name=fields.pop("name"), created_by=request.user,
                                                **fields)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Campaign {campaign.name!r} created as a draft: add the "
                             "actions it may take next.")
            return redirect("campaigns:catalogue", pk=campaign.pk)
    return render(request, "campaigns/campaign_form.html", {"form": form, "campaign": None})


def campaign_file_download(request: HttpRequest, pk: int) -> HttpResponse:
    """The campaign as a campaign file (docs/campaign-file.md)."""
    campaign = get_object_or_404(Campaign.objects.select_related("contact_policy"), pk=pk)
    response = JsonResponse(campaign_files.campaign_document(campaign=campaign),
                            json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}.json"'
    return response


@permission_required("campaigns.add_campaign", raise_exception=True)
def campaign_file_import(request: HttpRequest) -> HttpResponse:
    form = CampaignFileForm(request.POST or None, request.FILES or None)
    errors: dict[str, list[str]] = {}
    if request.method == "POST" and form.is_valid():
        try:
            result = campaign_files.campaign_import(
                form.cleaned_data["file"], update=form.cleaned_data["update"],
                imported_by=request.user)
        except campaign_files.CampaignFileError as error:
            errors = error.errors
        else:
            verdict = ("unchanged" if not result.changed else
                       f"{len(result.created)} created, {len(result.updated)} updated")
            messages.success(request, f"Imported {result.campaign.name!r}: {verdict}.")
            return redirect("campaigns:detail", pk=result.campaign.pk)
    return render(request, "campaigns/campaign_import.html", {"form": form, "errors": errors})


@require_POST
@permission_required("campaigns.add_campaign", raise_exception=True)
def campaign_clone(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    copy = services.campaign_clone(campaign=campaign, created_by=request.user)
    messages.success(request, f"{copy.name!r} created as a draft with {campaign.name!r}'s settings, "
                     "catalogue and reward weights (no policies or history).")
    return redirect("campaigns:edit", pk=copy.pk)


@permission_required("campaigns.change_campaign", raise_exception=True)
def campaign_edit(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    form = CampaignForm(request.POST or None, instance=campaign)
    if request.method == "POST" and form.is_valid():
        try:
            services.campaign_update(campaign=campaign, updated_by=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Campaign saved.")
            return redirect("campaigns:detail", pk=campaign.pk)
    return render(request, "campaigns/campaign_form.html", {"form": form, "campaign": campaign})


# ------------------------------------------------------------------------------ catalogue
def _catalogue_page(request: HttpRequest, campaign: Campaign, *, add_form: ActionForm | None = None,
                    generate_form: CatalogueGenerateForm | None = None) -> HttpResponse:
    return render(request, "campaigns/catalogue.html", {
        "campaign": campaign, "actions": selectors.campaign_catalogue(campaign=campaign),
        "add_form": add_form or ActionForm(prefix="add", initial={"variant": "default"}),
        "generate_form": generate_form or CatalogueGenerateForm(prefix="gen"),
    })


def catalogue(request: HttpRequest, pk: int) -> HttpResponse:
    return _catalogue_page(request, get_object_or_404(Campaign, pk=pk))


@require_POST
@permission_required(ADD_ACTION, raise_exception=True)
def action_add(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    form = ActionForm(request.POST, prefix="add", instance=Action(campaign=campaign))
    if form.is_valid():
        fields = {name: form.cleaned_data[name] for name in ActionForm.Meta.fields}
        try:
            action = services.action_create(campaign=campaign, created_by=request.user, **fields)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Added {action.label}.")
            return redirect("campaigns:catalogue", pk=campaign.pk)
    return _catalogue_page(request, campaign, add_form=form)


@require_POST
@permission_required(EDIT_CATALOGUE, raise_exception=True)
def action_toggle(request: HttpRequest, pk: int, action_pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    action = get_object_or_404(Action, pk=action_pk, campaign=campaign)
    try:
        services.action_update(action=action, updated_by=request.user, enabled=not action.enabled)
    except ValidationError as error:
        messages.error(request, "; ".join(error.messages))
    else:
        messages.success(request, f"{action.label} {'enabled' if action.enabled else 'disabled'}.")
    return redirect("campaigns:catalogue", pk=campaign.pk)


@require_POST
@permission_required(ADD_ACTION, raise_exception=True)
def catalogue_generate(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    form = CatalogueGenerateForm(request.POST, prefix="gen")
    if form.is_valid():
        created = services.catalogue_generate(
            campaign=campaign, channels=form.cleaned_data["channels"],
            offers=form.cleaned_data["offers"], send_windows=form.cleaned_data["send_windows"],
            created_by=request.user,
        )
        messages.success(request, f"{len(created)} actions added "
                                  f"({'none new' if not created else 'existing ones skipped'}).")
        return redirect("campaigns:catalogue", pk=campaign.pk)
    return _catalogue_page(request, campaign, generate_form=form)


# ------------------------------------------------------------------------------ reward weights
@permission_required(EDIT_WEIGHTS, raise_exception=True)
def reward_weights_edit(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    instance = RewardWeights.objects.filter(campaign=campaign).first() or RewardWeights(campaign=campaign)
    form = RewardWeightsForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        try:
            services.reward_weights_update(campaign=campaign, updated_by=request.user,
                                           **{k: form.cleaned_data[k] for k in RewardWeights.WEIGHT_FIELDS})
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Reward weights saved. New training runs use them.")
            return redirect("campaigns:detail", pk=campaign.pk)
    weights = {k: getattr(instance, k) for k in RewardWeights.WEIGHT_FIELDS}
    return render(request, "campaigns/reward_weights_form.html", {
        "campaign": campaign, "form": form,
        "preview": reward_preview(weights=weights, discount_factor=campaign.discount_factor,
                                  channel_costs=_channel_costs()),
    })


def _channel_costs() -> dict[str, float]:
    return {c.key: c.cost for c in workspace_vocabulary().channels}


@require_POST
@permission_required(EDIT_WEIGHTS, raise_exception=True)
def reward_weights_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The preview fragment htmx swaps in as the marketer types (nothing is saved)."""
    campaign = get_object_or_404(Campaign, pk=pk)
    form = RewardWeightsForm(request.POST, instance=RewardWeights(campaign=campaign))
    preview = None
    if form.is_valid():
        preview = reward_preview(weights={k: form.cleaned_data[k] for k in RewardWeights.WEIGHT_FIELDS},
                                 discount_factor=campaign.discount_factor,
                                 channel_costs=_channel_costs())
    return render(request, "campaigns/_reward_preview.html", {
        "campaign": campaign, "preview": preview, "form": form,
    })


# ------------------------------------------------------------------------------ contact policies
def contact_policy_list(request: HttpRequest) -> HttpResponse:
    return render(request, "campaigns/contact_policy_list.html", {
        "contact_policies": selectors.contact_policy_list(),
    })


@permission_required(EDIT_POLICY, raise_exception=True)
def contact_policy_edit(request: HttpRequest, pk: int) -> HttpResponse:
    policy = get_object_or_404(ContactPolicy, pk=pk)
    form = ContactPolicyForm(request.POST or None, instance=policy)
    caps = ChannelCapFormSet(request.POST or None, instance=policy, prefix="caps")
    if request.method == "POST" and form.is_valid() and caps.is_valid():
        try:
            with transaction.atomic():
                services.contact_policy_save(
                    contact_policy=policy, updated_by=request.user, **form.cleaned_data
                )
                caps.save()
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Contact policy saved.")
            return redirect("campaigns:contact-policy-list")
    return render(request, "campaigns/contact_policy_form.html", {
        "form": form, "caps": caps, "policy": policy,
    })


def parse_suppression_csv(data: bytes, *, default_reason: str = "") -> tuple[list[tuple[str, str]], list[str]]:
    """CSV bytes -> ([(external_id, reason)], [per-row error messages]); any error means reject all."""
    errors: list[str] = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], ["The file is not UTF-8 text (save it as CSV UTF-8)."]
    rows: list[tuple[str, str]] = []
    max_id = Customer._meta.get_field("external_id").max_length  # a CRM id, as customers keep it
    max_reason = SuppressionEntry._meta.get_field("reason").max_length
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if number == 1 and cells[0].lower() in ("external_id", "externalid", "user_id", "userid"):
            continue
        if len(cells) > 2:
            errors.append(f"Row {number}: expected external_id and an optional reason, got {len(cells)} columns.")
            continue
        external_id = cells[0]
        reason = cells[1] if len(cells) > 1 and cells[1] else default_reason
        if not external_id:
            errors.append(f"Row {number}: the external id is empty.")
        elif len(external_id) > max_id:
            errors.append(f"Row {number}: the external id is longer than {max_id} characters.")
        elif len(reason) > max_reason:
            errors.append(f"Row {number}: the reason is longer than {max_reason} characters.")
        else:
            rows.append((external_id, reason))
    if not rows and not errors:
        errors.append("The file has no customer rows.")
    return rows, errors


def contact_policy_suppressions(request: HttpRequest, pk: int) -> HttpResponse:
    policy = get_object_or_404(ContactPolicy, pk=pk)
    form = SuppressionUploadForm()
    row_errors: list[str] = []
    if request.method == "POST":
        if not request.user.has_perm(EDIT_SUPPRESSION):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        form = SuppressionUploadForm(request.POST, request.FILES)
        if form.is_valid():
            rows, row_errors = parse_suppression_csv(form.cleaned_data["file"].read(),
                                                     default_reason=form.cleaned_data["reason"])
            if not row_errors:
                by_reason: dict[str, list[str]] = defaultdict(list)
                for external_id, reason in rows:
                    by_reason[reason].append(external_id)
                with transaction.atomic():
                    added = sum(services.suppression_add(contact_policy=policy, external_ids=ids,
                                                         reason=reason, added_by=request.user)
                                for reason, ids in by_reason.items())
                messages.success(request, f"{added} customers added to the suppression list "
                                          f"({len(rows) - added} were already on it).")
                return redirect("campaigns:contact-policy-suppressions", pk=policy.pk)
    entries = Paginator(policy.suppressions.order_by("-added_at", "-id"), 50).get_page(request.GET.get("page"))
    check = SuppressionCheckForm(request.GET if "check" in request.GET else None)
    checked = (selectors.suppression_entry_for(contact_policy=policy,
                                               external_id=check.cleaned_data["check"])
               if check.is_bound and check.is_valid() else None)
    return render(request, "campaigns/suppression_list.html", {
        "policy": policy, "form": form, "row_errors": row_errors, "page": entries,
        "check_form": check, "checked": checked,
    })


# ----------------------------------------------------------------------------- vocabulary
def vocabulary(request: HttpRequest) -> HttpResponse:
    """The workspace's channels, offers and send windows, which every campaign's catalogue
    draws on."""
    return render(request, "campaigns/vocabulary.html", {
        "channels": selectors.channel_list(), "offers": selectors.offer_list(), "send_windows": selectors.send_window_list(),
        "section": "campaigns",
    })


def channel_edit(request: HttpRequest, channel_pk: int | None = None) -> HttpResponse:
    channel = get_object_or_404(Channel, pk=channel_pk) if channel_pk else None
    return _vocabulary_form(
        request, record=channel, form_class=ChannelForm, noun="channel",
        permission="campaigns.change_channel" if channel else "campaigns.add_channel",
        save=lambda fields: (
            services.channel_update(channel=channel, updated_by=request.user, **fields)
            if channel else services.channel_create(created_by=request.user, **fields)),
    )


def offer_edit(request: HttpRequest, offer_pk: int | None = None) -> HttpResponse:
    offer = get_object_or_404(Offer, pk=offer_pk) if offer_pk else None
    return _vocabulary_form(
        request, record=offer, form_class=OfferForm, noun="offer",
        permission="campaigns.change_offer" if offer else "campaigns.add_offer",
        save=lambda fields: (services.offer_update(offer=offer, updated_by=request.user, **fields)
                             if offer else services.offer_create(created_by=request.user,
                                                                 **fields)),
    )


def send_window_edit(request: HttpRequest, window_pk: int | None = None) -> HttpResponse:
    window = get_object_or_404(SendWindow, pk=window_pk) if window_pk else None
    return _vocabulary_form(
        request, record=window, form_class=SendWindowForm, noun="send window",
        permission="campaigns.change_sendwindow" if window else "campaigns.add_sendwindow",
        save=lambda fields: (
            services.send_window_update(send_window=window, updated_by=request.user, **fields)
            if window else services.send_window_create(created_by=request.user, **fields)),
    )


def _vocabulary_form(request: HttpRequest, *, record: Channel | Offer | SendWindow | None,
                     form_class: type,
                     noun: str, permission: str, save) -> HttpResponse:
    if request.method == "POST" and not request.user.has_perm(permission):
        raise PermissionDenied
    form = form_class(request.POST or None, instance=record)
    if request.method == "POST" and form.is_valid():
        try:
            saved = save(dict(form.cleaned_data))
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Saved the {noun} {saved.label!r}.")
            return redirect("campaigns:vocabulary")
    return render(request, "campaigns/vocabulary_form.html", {
        "form": form, "record": record, "noun": noun, "can_save": request.user.has_perm(permission),
        "section": "campaigns",
    })


@require_POST
@permission_required("campaigns.delete_channel", raise_exception=True)
def channel_delete(request: HttpRequest, channel_pk: int) -> HttpResponse:
    channel = get_object_or_404(Channel, pk=channel_pk)
    return _vocabulary_delete(request, lambda: services.channel_delete(
        channel=channel, deleted_by=request.user), channel.label)


@require_POST
@permission_required("campaigns.delete_offer", raise_exception=True)
def offer_delete(request: HttpRequest, offer_pk: int) -> HttpResponse:
    offer = get_object_or_404(Offer, pk=offer_pk)
    return _vocabulary_delete(request, lambda: services.offer_delete(
        offer=offer, deleted_by=request.user), offer.label)


@require_POST
@permission_required("campaigns.delete_sendwindow", raise_exception=True)
def send_window_delete(request: HttpRequest, window_pk: int) -> HttpResponse:
    window = get_object_or_404(SendWindow, pk=window_pk)
    return _vocabulary_delete(request, lambda: services.send_window_delete(
        send_window=window, deleted_by=request.user), window.label)


def _vocabulary_delete(request: HttpRequest, delete, label: str) -> HttpResponse:
    try:
        delete()
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Deleted {label!r}.")
    return redirect("campaigns:vocabulary")
