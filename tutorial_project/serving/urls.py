from django.urls import path

from tutorial_project.serving import views

app_name = "serving"
urlpatterns = [
    path("wait-async/", views.wait_async, name="wait-async"),
    path("wait-sync/", views.wait_sync, name="wait-sync"),
    path("threads/", views.threads, name="threads"),
    path("waits/", views.waits, name="waits"),
]
