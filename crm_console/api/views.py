"""API views: one per operation, nested Input/Output serializers, logic in services/selectors."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm_console.api.permissions import ModelPermissionForWrites
from crm_console.campaigns import selectors as campaign_selectors
from crm_console.campaigns import services as campaign_services
from crm_console.campaigns.models import Campaign


class CampaignListApi(APIView):
    """List campaigns; marketers may create a draft campaign."""

    permission_classes = [ModelPermissionForWrites]
    write_permission = "campaigns.add_campaign"

    class InputSerializer(serializers.Serializer):
        # Field types only; every rule (ranges, time zone, going live) is the model's.
        name = serializers.CharField(max_length=120)
        description = serializers.CharField(required=False, allow_blank=True)
        objective = serializers.ChoiceField(choices=Campaign.Objective.choices, required=False)
        horizon_days = serializers.IntegerField(required=False)
        discount_factor = serializers.FloatField(required=False)
        holdout_share = serializers.DecimalField(max_digits=4, decimal_places=3, required=False)
        attribution_window_days = serializers.IntegerField(required=False)
        control_policy = serializers.ChoiceField(choices=Campaign.ControlPolicy.choices, required=False)
        decision_mode = serializers.ChoiceField(choices=Campaign.DecisionMode.choices, required=False)
        time_zone = serializers.CharField(required=False)

    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = Campaign
            fields = [
                "id", "name", "description", "objective", "status", "horizon_days",
                "discount_factor", "holdout_share", "attribution_window_days", "control_policy",
                "decision_mode", "time_zone", "contact_policy", "created_at",
            ]

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        campaigns = campaign_selectors.campaign_list()
        return Response(self.OutputSerializer(campaigns, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = campaign_services.campaign_create(created_by=request.user, **serializer.validated_data)
        return Response(self.OutputSerializer(campaign).data, status=status.HTTP_201_CREATED)
