from django.apps import AppConfig


class AwsapiConfig(AppConfig):
    name = "awsapi"
    verbose_name = "AWS-compatible API"
