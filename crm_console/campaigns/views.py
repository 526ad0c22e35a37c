"""Campaign and contact-policy pages. Thin: forms validate, services write, selectors read."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from crm_console.campaigns import selectors, services
from crm_console.campaigns.forms import CampaignForm, ChannelCapFormSet, ContactPolicyForm
from crm_console.campaigns.models import Campaign, ContactPolicy


def campaign_list(request: HttpRequest) -> HttpResponse:
    return render(request, "campaigns/campaign_list.html", {"campaigns": selectors.campaign_list()})


def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("contact_policy"), pk=pk)
    return render(request, "campaigns/campaign_detail.html", {
        "campaign": campaign, "actions": selectors.campaign_catalogue(campaign=campaign),
    })


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


def contact_policy_list(request: HttpRequest) -> HttpResponse:
    return render(request, "campaigns/contact_policy_list.html", {
        "contact_policies": selectors.contact_policy_list(),
    })


@permission_required("campaigns.change_contactpolicy", raise_exception=True)
def contact_policy_edit(request: HttpRequest, pk: int) -> HttpResponse:
    policy = get_object_or_404(ContactPolicy, pk=pk)
    form = ContactPolicyForm(request.POST or None, instance=policy)
    caps = ChannelCapFormSet(request.POST or None, instance=policy, prefix="caps")
    if request.method == "POST" and form.is_valid() and caps.is_valid():
        with transaction.atomic():
            services.contact_policy_save(
                contact_policy=policy, updated_by=request.user, **form.cleaned_data
            )
            caps.save()
        messages.success(request, "Contact policy saved.")
        return redirect("campaigns:contact-policy-list")
    return render(request, "campaigns/contact_policy_form.html", {
        "form": form, "caps": caps, "policy": policy,
    })
