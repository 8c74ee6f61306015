from django.urls import path

from tutorial_project.dashboard import views

app_name = "dashboard"
urlpatterns = [path("", views.dashboard, name="dashboard")]
