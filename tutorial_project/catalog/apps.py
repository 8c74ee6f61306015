from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "tutorial_project.catalog"
    label = "catalog"
