from django.shortcuts import render

from instances.models import Instance


def overview(request):
    """The landing page: every instance with its status and when it last reported."""
    instances = Instance.objects.order_by("name")
    counts = {status: 0 for status in Instance.Status.values}
    for instance in instances:
        counts[instance.status] += 1
    return render(
        request,
        "dashboard/overview.html",
        {"instances": instances, "counts": counts, "total": len(instances)},
    )
