"""The project's URLs. Views mounted from notebook cells are appended at runtime (playground)."""

from django.urls import include, path

urlpatterns = [
    path("api/catalog/", include("tutorial_project.catalog.urls")),
    path("api/dashboard/", include("tutorial_project.dashboard.urls")),
    path("serving/", include("tutorial_project.serving.urls")),
]
