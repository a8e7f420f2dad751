from django.urls import path

from awsapi import views

app_name = "awsapi"
urlpatterns = [
    path("", views.endpoint, name="endpoint"),
]
