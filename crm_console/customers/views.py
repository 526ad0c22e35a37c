"""Customer pages."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from crm_console.customers import selectors
from crm_console.customers.models import Customer


def customer_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    page = Paginator(selectors.customer_list(search=search), 50).get_page(request.GET.get("page"))
    return render(request, "customers/customer_list.html", {"page": page, "search": search})


def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=pk)
    return render(request, "customers/customer_detail.html", {
        "customer": customer,
        "consents": selectors.customer_current_consent(customer=customer),
        "events": customer.events.order_by("-timestamp")[:100],
    })
