"""Shapes of the pipeline-groups API, for the OpenAPI schema (the views build the bodies)."""

from rest_framework import serializers

from teams.choices import Role


class RoleGrantSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
    user = serializers.CharField(required=False, help_text="A user's name (or `group`).")
    group = serializers.CharField(required=False, help_text="A Django group's name (or `user`).")


class PipelineGroupSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(required=False, allow_blank=True)
    roles = RoleGrantSerializer(many=True, required=False)
