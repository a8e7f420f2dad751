from django.urls import path

from approvals import views

app_name = "approvals"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("<uuid:pk>/decide/", views.decide, name="decide"),
    path("link/<str:signed>/", views.link, name="link"),
]
